import { appendFileSync, createReadStream, existsSync, renameSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Exchange } from './observing-proxy';
import { sqsClient } from './sqs';

/**
 * SQS keeps what it accepted; local-aws-sqs keeps it in memory, so a restart of `npm start` would
 * lose every message in flight. This journal sees every call made to it (at the SQS gate in front
 * of it), on the SQS JSON protocol, and notes on disk each message sent and each message deleted
 * (append-only, one JSON line each). At the next start, the messages sent and never deleted are
 * sent again, so work resumes at once, as it would in AWS, instead of waiting for the sweeper.
 * Nothing in it knows this app's queues.
 *
 * A message is noted after local SQS accepted it and before the sender is answered: a crash in
 * between loses it exactly as it loses the sender, whose job the sweeper then recovers. A message
 * moved to a dead-letter queue is sent again to its own queue after a restart (one more try).
 */

interface PendingMessage {
  queue: string;
  body: string;
  attributes?: unknown;
}

type JournalEntry = ({ op: 'send'; id: string } & PendingMessage) | { op: 'delete'; id: string };

export interface SqsJournal {
  /**
   * Notes what a call local SQS answered did (a message sent, a message deleted). Given every
   * exchange with local SQS before its caller is answered (the runtime's SQS gate calls it), so a
   * message is on disk by the time its sender goes on.
   */
  observe(exchange: Exchange): void;
  /**
   * Sends again what the previous run left pending to the queues of the same name, straight to
   * local SQS at `directEndpoint` (sent through the gate, the journal would note them a second
   * time); answers how many messages that was.
   */
  replay(queueUrls: readonly string[], directEndpoint: string): Promise<number>;
}

/** The queue's name, from its URL (`…/000000000000/NAME`): stable across restarts, unlike the port. */
const queueName = (queueUrl: unknown) =>
  String(queueUrl ?? '')
    .split('/')
    .pop() ?? '';

/** Receipt handles remembered at most: a redelivered message's earlier handle is never deleted. */
const MAX_RECEIPTS = 100_000;
/** Lines appended before the file is rewritten from what is pending, so a long run's file stays small. */
const COMPACT_EVERY = 20_000;

const isEntry = (value: unknown): value is JournalEntry => {
  const entry = value as Partial<{ op: string; id: string; queue: string; body: string }> | null;
  if (typeof entry !== 'object' || entry === null || typeof entry.id !== 'string') return false;
  if (entry.op === 'delete') return true;
  return entry.op === 'send' && typeof entry.queue === 'string' && typeof entry.body === 'string';
};

/** Messages sent and not deleted, by message id, read line by line from a journal file. */
export async function pendingMessages(file: string): Promise<Map<string, PendingMessage>> {
  const pending = new Map<string, PendingMessage>();
  if (!existsSync(file)) return pending;
  const lines = createInterface({
    input: createReadStream(file, 'utf8'),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  for await (const line of lines) {
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      continue; // A line cut short by a crash: the message it named was never answered as sent.
    }
    if (!isEntry(entry)) continue;
    if (entry.op === 'send') {
      const { op: _, id, ...message } = entry;
      pending.set(id, message);
    } else pending.delete(entry.id);
  }
  return pending;
}

function writeJournal(file: string, pending: Map<string, PendingMessage>): void {
  const compacted = `${file}.tmp`;
  writeFileSync(
    compacted,
    [...pending].map(([id, message]) => `${JSON.stringify({ op: 'send', id, ...message })}\n`).join(''),
    { mode: 0o600 },
  );
  renameSync(compacted, file);
}

/**
 * Opens the journal kept in `file`. Once the queues exist, `replay` sends again what the previous
 * run left, to the queues of the same name, and rewrites the journal with only what is pending.
 * `log` hears of a journal that can no longer be written (it warns once).
 */
export function openSqsJournal(options: { file: string; log?: (line: string) => void }): SqsJournal {
  /** What the file holds, in memory too, so it can be rewritten without reading it back. */
  let pending = new Map<string, PendingMessage>();
  let appended = 0;
  let warned = false;
  const note = (entries: JournalEntry[]) => {
    if (entries.length === 0) return;
    for (const entry of entries) {
      if (entry.op === 'send') {
        const { op: _, id, ...message } = entry;
        pending.set(id, message);
      } else pending.delete(entry.id);
    }
    try {
      appended += entries.length;
      if (appended >= COMPACT_EVERY) {
        writeJournal(options.file, pending);
        appended = 0;
      } else
        appendFileSync(options.file, entries.map((entry) => `${JSON.stringify(entry)}\n`).join(''), {
          mode: 0o600,
        });
    } catch (error) {
      if (!warned)
        options.log?.(
          `[sqs] the queue journal cannot be written (${String(error)}); a restart will lose queued messages`,
        );
      warned = true;
    }
  };
  /** Receipt handles of received messages → message ids, so a delete names the message it ends. */
  const received = new Map<string, string>();

  return {
    observe: ({ operation, request, answer, status }) => {
      if (status < 300) note(journalEntries(operation, request, answer, received));
    },
    replay: async (queueUrls, directEndpoint) => {
      const direct = sqsClient(directEndpoint);
      try {
        pending = await replay(
          await pendingMessages(options.file),
          direct,
          queueUrls,
          directEndpoint,
          options.log,
        );
      } finally {
        direct.destroy();
      }
      writeJournal(options.file, pending);
      return pending.size;
    },
  };
}

/**
 * Sends the messages left again and answers what is pending now: those sent, under the ids local
 * SQS gave them, and those it could not take this time, kept for the next start.
 */
async function replay(
  left: Map<string, PendingMessage>,
  client: SQSClient,
  queueUrls: readonly string[],
  directEndpoint: string,
  log?: (line: string) => void,
): Promise<Map<string, PendingMessage>> {
  const now = new Map<string, PendingMessage>();
  const messages = [...left.entries()];
  for (let start = 0; start < messages.length; start += 10) {
    const batch = messages.slice(start, start + 10);
    const byQueue = new Map<string, [string, PendingMessage][]>();
    for (const item of batch) byQueue.set(item[1].queue, [...(byQueue.get(item[1].queue) ?? []), item]);
    for (const [queue, items] of byQueue) {
      const url = queueUrls.find((candidate) => queueName(candidate) === queue);
      if (!url) continue; // The queue is gone from the template: its messages with it.
      const keep = () => {
        for (const [id, message] of items) now.set(id, message);
      };
      try {
        const result = await client.send(
          new SendMessageBatchCommand({
            // Straight to local SQS: the journal in front would note these sends a second time.
            QueueUrl: `${directEndpoint}${new URL(url).pathname}`,
            Entries: items.map(([, message], index) => ({
              Id: String(index),
              MessageBody: message.body,
              ...(message.attributes ? { MessageAttributes: message.attributes as never } : {}),
            })),
          }),
        );
        for (const success of result.Successful ?? []) {
          const item = items[Number(success.Id)];
          if (item && success.MessageId) now.set(success.MessageId, item[1]);
        }
        for (const failure of result.Failed ?? []) {
          const item = items[Number(failure.Id)];
          if (item) now.set(item[0], item[1]);
        }
      } catch (error) {
        log?.(
          `[sqs] could not send ${items.length} journaled messages again (${String(error)}); kept for the next start`,
        );
        keep();
      }
    }
  }
  return now;
}

/** What one successful SQS call changes in the journal. */
function journalEntries(
  operation: string,
  requestBody: Buffer,
  answerBody: Buffer,
  received: Map<string, string>,
): JournalEntry[] {
  const request = JSON.parse(requestBody.toString('utf8') || '{}') as Record<string, unknown>;
  const answer = JSON.parse(answerBody.toString('utf8') || '{}') as Record<string, unknown>;
  const queue = queueName(request.QueueUrl);
  const withAttributes = (attributes: unknown) => (attributes ? { attributes } : {});
  switch (operation) {
    case 'SendMessage':
      return typeof answer.MessageId === 'string'
        ? [
            {
              op: 'send',
              queue,
              id: answer.MessageId,
              body: String(request.MessageBody ?? ''),
              ...withAttributes(request.MessageAttributes),
            },
          ]
        : [];
    case 'SendMessageBatch': {
      const entries = (request.Entries ?? []) as {
        Id?: string;
        MessageBody?: string;
        MessageAttributes?: unknown;
      }[];
      const byId = new Map(entries.map((entry) => [entry.Id, entry]));
      return ((answer.Successful ?? []) as { Id?: string; MessageId?: string }[]).flatMap((success) => {
        const entry = byId.get(success.Id);
        if (!entry || !success.MessageId) return [];
        return [
          {
            op: 'send' as const,
            queue,
            id: success.MessageId,
            body: String(entry.MessageBody ?? ''),
            ...withAttributes(entry.MessageAttributes),
          },
        ];
      });
    }
    case 'ReceiveMessage':
      for (const message of (answer.Messages ?? []) as { MessageId?: string; ReceiptHandle?: string }[]) {
        if (message.MessageId && message.ReceiptHandle)
          received.set(message.ReceiptHandle, message.MessageId);
        if (received.size > MAX_RECEIPTS) received.delete(received.keys().next().value as string);
      }
      return [];
    case 'DeleteMessage':
      return deletions([request.ReceiptHandle], received);
    case 'DeleteMessageBatch': {
      const entries = (request.Entries ?? []) as { Id?: string; ReceiptHandle?: string }[];
      const succeeded = new Set(
        ((answer.Successful ?? []) as { Id?: string }[]).map((success) => success.Id),
      );
      return deletions(
        entries.filter((entry) => succeeded.has(entry.Id)).map((entry) => entry.ReceiptHandle),
        received,
      );
    }
    default:
      return [];
  }
}

function deletions(handles: unknown[], received: Map<string, string>): JournalEntry[] {
  return handles.flatMap((handle) => {
    const id = received.get(String(handle));
    if (!id) return [];
    received.delete(String(handle));
    return [{ op: 'delete' as const, id }];
  });
}
