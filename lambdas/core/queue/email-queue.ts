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

/** A chunk of a job's recipients: `chunk` is its number in the job (see `RECIPIENTS_PER_MESSAGE`). */
export const chunkMessage = z.strictObject({
  job_id: z.uuid(),
  chunk: z.number().int().min(0),
  recipients: z.array(z.string().min(3)).min(1).max(RECIPIENTS_PER_MESSAGE),
  deferrals,
});
export type ChunkMessage = z.output<typeof chunkMessage>;

export const emailMessage = z.union([chunkMessage, recipientMessage]);
export type EmailMessage = RecipientMessage | ChunkMessage;

/** The recipients a message carries. */
export const recipientsOf = (message: EmailMessage): string[] =>
  'recipient' in message ? [message.recipient] : message.recipients;

/**
 * A job's recipients as its chunk messages: the nth ten of `recipients` (the job's stored order) is
 * chunk n. With `only`, each chunk carries just those of its recipients, and a chunk with none is left out.
 */
export function chunkMessages(
  jobId: string,
  recipients: readonly string[],
  only?: ReadonlySet<string>,
): ChunkMessage[] {
  return chunks(recipients, RECIPIENTS_PER_MESSAGE).flatMap((part, chunk) => {
    const kept = only ? part.filter((recipient) => only.has(recipient)) : part;
    return kept.length > 0 ? [{ job_id: jobId, chunk, recipients: kept }] : [];
  });
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

/** SendMessageBatch takes at most 10 entries. */
const BATCH_SIZE = 10;
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
        MessageBody: JSON.stringify(message),
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
    await mapConcurrently(chunks(messages, BATCH_SIZE), CONCURRENT_BATCHES, async (batch) => {
      let entries = batch.map((message, index) => ({
        Id: String(index),
        MessageBody: JSON.stringify(message),
      }));
      for (let attempt = 0; entries.length > 0; attempt++) {
        if (attempt > 0) await backoff(attempt, 50);
        const result = await this.client.send(
          new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }),
        );
        const failed = new Set((result.Failed ?? []).map((failure) => failure.Id));
        entries = entries.filter((entry) => failed.has(entry.Id));
        if (entries.length > 0 && attempt + 1 >= MAX_ATTEMPTS) {
          throw new Error(`Could not enqueue ${entries.length} messages: ${JSON.stringify(result.Failed)}`);
        }
      }
    });
  }
}
