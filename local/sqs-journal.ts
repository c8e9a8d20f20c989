import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { startObservingProxy } from './observing-proxy';

/**
 * SQS keeps what it accepted; local-aws-sqs keeps it in memory, so a restart of `npm start` would
 * lose every message in flight. This journal sits in front of it, on the SQS JSON protocol, and
 * notes on disk each message sent and each message deleted (append-only, one JSON line each). At
 * the next start, the messages sent and never deleted are sent again, so work resumes at once,
 * as it would in AWS, instead of waiting for the sweeper. Nothing in it knows this app's queues.
 *
 * A message is noted after local SQS accepted it and before the sender is answered: a crash in
 * between loses it exactly as it loses the sender, whose job the sweeper then recovers. A message
 * moved to a dead-letter queue is sent again to its own queue after a restart (one more try).
 */

type JournalEntry =
  | { op: 'send'; queue: string; id: string; body: string; attributes?: unknown }
  | { op: 'delete'; id: string };

interface SendEntry {
  Id?: string;
  MessageBody?: string;
  MessageAttributes?: unknown;
}

export interface SqsJournal {
  /** The endpoint to use instead of local SQS's own. */
  endpoint: string;
  /** Sends again what the previous run left pending; answers how many messages that was. */
  replay(client: SQSClient, queueUrls: readonly string[]): Promise<number>;
  stop(): Promise<void>;
}

/** The queue's name, from its URL (`…/000000000000/NAME`): stable across restarts, unlike the port. */
const queueName = (queueUrl: unknown) =>
  String(queueUrl ?? '')
    .split('/')
    .pop() ?? '';

/** Messages sent and not deleted, by queue name, from a journal file. */
export function pendingMessages(file: string): Map<string, { body: string; attributes?: unknown }[]> {
  const sent = new Map<string, { queue: string; body: string; attributes?: unknown }>();
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      let entry: JournalEntry;
      try {
        entry = JSON.parse(line) as JournalEntry;
      } catch {
        continue; // A line cut short by a crash: the message it named was never answered as sent.
      }
      if (entry.op === 'send') sent.set(entry.id, entry);
      else sent.delete(entry.id);
    }
  }
  const byQueue = new Map<string, { body: string; attributes?: unknown }[]>();
  for (const { queue, body, attributes } of sent.values()) {
    const list = byQueue.get(queue) ?? [];
    list.push(attributes === undefined ? { body } : { body, attributes });
    byQueue.set(queue, list);
  }
  return byQueue;
}

/** Receipt handles remembered at most: a redelivered message's earlier handle is never deleted. */
const MAX_RECEIPTS = 100_000;

/**
 * Starts the journal in front of `target` (local SQS). Once the queues exist, `replay` sends again
 * what the previous run left, through a client that talks to local SQS directly, to the queues of
 * the same name, and rewrites the journal with only what is pending.
 */
export async function startSqsJournal(options: { target: string; file: string }): Promise<SqsJournal> {
  const note = (entries: JournalEntry[]) => {
    if (entries.length > 0)
      appendFileSync(options.file, entries.map((entry) => `${JSON.stringify(entry)}\n`).join(''));
  };
  /** Receipt handles of received messages → message ids, so a delete names the message it ends. */
  const received = new Map<string, string>();
  const proxy = await startObservingProxy(options.target, ({ operation, request, answer, status }) => {
    if (status < 300) note(journalEntries(operation, request, answer, received));
  });
  return {
    endpoint: proxy.endpoint,
    replay: (client, queueUrls) => replay(options.file, client, queueUrls),
    stop: () => proxy.stop(),
  };
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
  switch (operation) {
    case 'SendMessage':
      return typeof answer.MessageId === 'string'
        ? [{ op: 'send', queue, id: answer.MessageId, body: String(request.MessageBody ?? '') }]
        : [];
    case 'SendMessageBatch': {
      const entries = (request.Entries ?? []) as SendEntry[];
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
            ...(entry.MessageAttributes ? { attributes: entry.MessageAttributes } : {}),
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

async function replay(file: string, client: SQSClient, queueUrls: readonly string[]): Promise<number> {
  const fresh: JournalEntry[] = [];
  for (const [queue, messages] of pendingMessages(file)) {
    const url = queueUrls.find((candidate) => queueName(candidate) === queue);
    if (!url) continue; // The queue is gone from the template: its messages with it.
    for (let start = 0; start < messages.length; start += 10) {
      const batch = messages.slice(start, start + 10);
      const result = await client.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: batch.map((message, index) => ({
            Id: String(index),
            MessageBody: message.body,
            ...(message.attributes ? { MessageAttributes: message.attributes as never } : {}),
          })),
        }),
      );
      for (const success of result.Successful ?? []) {
        const message = batch[Number(success.Id)];
        if (message && success.MessageId)
          fresh.push({ op: 'send', queue, id: success.MessageId, body: message.body });
      }
    }
  }
  // Compacted: only what is still pending, under the ids local SQS gave it this time.
  const compacted = `${file}.tmp`;
  writeFileSync(compacted, fresh.map((entry) => `${JSON.stringify(entry)}\n`).join(''));
  renameSync(compacted, file);
  return fresh.length;
}
