import {
  ChangeMessageVisibilityCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { backoff, chunks, mapConcurrently } from '../concurrency';
import * as z from '../zod';

/**
 * Recipients one message carries at most. A job's recipients go out ten to a message, in the order
 * the job stores them, so the nth message always holds the same chunk of the job (the sweeper
 * enqueues a lost chunk again under its number): a consumer claims the chunk, one write for ten
 * recipients (see `ChunkClaims`). Ten keep a message far below SQS's 256 KB and a batch of ten
 * messages within one consumer's timeout at ten sends a second.
 *
 * It is part of what is stored, not a tuning knob: changing it renumbers the chunks of jobs in
 * flight (a chunk's first claim reads nothing, so a recipient could be sent twice) and a smaller
 * maximum would refuse messages already queued. Change it only with no job running.
 */
export const RECIPIENTS_PER_MESSAGE = 10;

/** How many times the consumer put the email(s) back to wait (throttled, paused): the next wait grows with it. */
const deferrals = z.number().int().min(0).optional();

/**
 * One recipient: the message of a retry (a failed recipient queued again, claimed on its own) and
 * of versions before chunks; the job holds everything else.
 */
export const recipientMessage = z.strictObject({
  job_id: z.uuid(),
  recipient: z.string().min(3),
  deferrals,
});
export type RecipientMessage = z.output<typeof recipientMessage>;

/**
 * A recipient's name and postal address as the registry held them when the job was accepted: the
 * consumer renders from them, and reads the registry only for a recipient queued without them (a
 * scheduled job's, a retry's, a chunk the sweeper recovered).
 */
const queuedNonprofit = z.strictObject({ name: z.string(), address: z.string() });
export type QueuedNonprofit = z.output<typeof queuedNonprofit>;

/**
 * A chunk of a job's recipients: `chunk` is its number in the job (see `RECIPIENTS_PER_MESSAGE`);
 * `nonprofits`, when present, the recipients' values, in the same order.
 */
export const chunkMessage = z
  .strictObject({
    job_id: z.uuid(),
    chunk: z.number().int().min(0),
    recipients: z.array(z.string().min(3)).min(1).max(RECIPIENTS_PER_MESSAGE),
    nonprofits: z.array(queuedNonprofit).max(RECIPIENTS_PER_MESSAGE).optional(),
    deferrals,
  })
  .refine((message) => !message.nonprofits || message.nonprofits.length === message.recipients.length, {
    message: 'nonprofits must match recipients one for one',
  });
export type ChunkMessage = z.output<typeof chunkMessage>;

export const emailMessage = z.union([chunkMessage, recipientMessage]);
export type EmailMessage = RecipientMessage | ChunkMessage;

/** The recipients a message carries. */
export const recipientsOf = (message: EmailMessage): string[] =>
  'recipient' in message ? [message.recipient] : message.recipients;

/**
 * A job's recipients as its chunk messages: the nth ten of `recipients` (the job's stored order) is
 * chunk n. With `only`, each chunk carries just those of its recipients, and a chunk with none is
 * left out. With `values`, a chunk carries its recipients' names and addresses (`QueuedNonprofit`)
 * when it has them for every one of them; otherwise none, and the consumer reads the registry.
 */
export function chunkMessages(
  jobId: string,
  recipients: readonly string[],
  { only, values }: { only?: ReadonlySet<string>; values?: ReadonlyMap<string, QueuedNonprofit> } = {},
): ChunkMessage[] {
  return chunks(recipients, RECIPIENTS_PER_MESSAGE).flatMap((part, chunk) => {
    const kept = only ? part.filter((recipient) => only.has(recipient)) : part;
    if (kept.length === 0) return [];
    const carried = values && carriedValues(kept.map((recipient) => values.get(recipient)));
    return [{ job_id: jobId, chunk, recipients: kept, ...(carried ? { nonprofits: carried } : {}) }];
  });
}

/**
 * What a chunk carries of its recipients' values (in their order): all of them, or none (the
 * consumer then reads the registry). Only the two values: a registry item's other fields are not
 * the message's to carry.
 */
export function carriedValues(
  values: readonly (QueuedNonprofit | undefined)[],
): QueuedNonprofit[] | undefined {
  if (!values.every((value) => value !== undefined)) return undefined;
  return (values as QueuedNonprofit[]).map(({ name, address }) => ({ name, address }));
}

/** SQS delays a message by at most 15 minutes. */
export const MAX_DELAY_SECONDS = 900;

export interface EmailQueue {
  /** Sends every message or throws; a message it could not send is named in the error. */
  enqueue(messages: readonly EmailMessage[]): Promise<void>;
  /**
   * Sends a message again, visible after a delay: a consumer that must wait (the transport is
   * throttled or paused) puts the email back as a new message rather than failing the received
   * one, whose receive count would carry it to the dead-letter queue while nothing is wrong with it.
   */
  defer(message: EmailMessage, delaySeconds: number): Promise<void>;
  /**
   * Keeps a received message out of sight for this long (its visibility timeout) once it goes back
   * to the queue, so it is seen again when it can succeed rather than after the queue's default.
   */
  returnAfter(receiptHandle: string, seconds: number): Promise<void>;
}

/** SQS hides a message for at most 12 hours. */
const MAX_VISIBILITY_SECONDS = 12 * 60 * 60;

/**
 * SendMessageBatch takes at most 10 entries, of at most 256 KiB together. A chunk carrying its
 * nonprofits' values is about 24 KB at most in ordinary text (ten of a 254-character address, and a
 * name and postal address of 200 and 500 three-byte characters), up to about 45 KB when every
 * character is written as a six-byte escape: so the size is checked.
 */
const BATCH_SIZE = 10;
const BATCH_MAX_BYTES = 256 * 1024;
const CONCURRENT_BATCHES = 16;
const MAX_ATTEMPTS = 5;

export class SqsEmailQueue implements EmailQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async defer(message: EmailMessage, delaySeconds: number): Promise<void> {
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: messageBody(message),
        DelaySeconds: Math.max(0, Math.min(MAX_DELAY_SECONDS, Math.round(delaySeconds))),
      }),
    );
  }

  async returnAfter(receiptHandle: string, seconds: number): Promise<void> {
    await this.client.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.queueUrl,
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: Math.max(0, Math.min(MAX_VISIBILITY_SECONDS, Math.ceil(seconds))),
      }),
    );
  }

  async enqueue(messages: readonly EmailMessage[]): Promise<void> {
    await sendAll(this.client, this.queueUrl, messages.map(messageBody));
  }
}

/**
 * Sends every body, in batches, several batches at once; entries SQS refuses are sent again with
 * backoff, and what is still refused after `MAX_ATTEMPTS` throws, naming how many.
 */
export async function sendAll(
  client: SQSClient,
  queueUrl: string,
  bodies: readonly string[],
  delaySeconds = 0,
): Promise<void> {
  const DelaySeconds = Math.max(0, Math.min(MAX_DELAY_SECONDS, Math.round(delaySeconds)));
  await mapConcurrently(sendBatches(bodies), CONCURRENT_BATCHES, async (batch) => {
    let entries = batch.map((body, index) => ({
      Id: String(index),
      MessageBody: body,
      ...(DelaySeconds > 0 ? { DelaySeconds } : {}),
    }));
    for (let attempt = 0; entries.length > 0; attempt++) {
      if (attempt > 0) await backoff(attempt, 50);
      const result = await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
      const failed = new Set((result.Failed ?? []).map((failure) => failure.Id));
      entries = entries.filter((entry) => failed.has(entry.Id));
      if (entries.length > 0 && attempt + 1 >= MAX_ATTEMPTS) {
        throw new Error(`Could not enqueue ${entries.length} messages: ${JSON.stringify(result.Failed)}`);
      }
    }
  });
}

/**
 * A message's body for SQS, which refuses U+FFFE and U+FFFF in a message (and with it the whole
 * batch) though they are valid in a nonprofit's name: written as JSON escapes, which parse back the same.
 */
export const messageBody = (message: EmailMessage): string =>
  JSON.stringify(message).replace(/[\uFFFE\uFFFF]/g, (found) => `\\u${found.charCodeAt(0).toString(16)}`);

/** Message bodies in SendMessageBatch calls: ten at most, and within SQS's size for one call. */
export function sendBatches(bodies: readonly string[]): string[][] {
  const batches: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const body of bodies) {
    const size = Buffer.byteLength(body);
    if (current.length === BATCH_SIZE || (current.length > 0 && bytes + size > BATCH_MAX_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(body);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
