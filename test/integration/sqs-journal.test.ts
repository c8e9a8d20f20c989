import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { startObservingProxy } from '../../local/observing-proxy';
import { sqsClient, startLocalSqs } from '../../local/sqs';
import { openSqsJournal } from '../../local/sqs-journal';

const dir = mkdtempSync(join(tmpdir(), 'sqs-journal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Local SQS with the journal watching every call at a proxy in front (the runtime's SQS gate, as it
 * starts them); the journal file survives a stop.
 */
async function startQueues(file: string) {
  const sqs = await startLocalSqs();
  const journal = openSqsJournal({ file });
  const front = await startObservingProxy(sqs.endpoint, journal.observe);
  const client = sqsClient(front.endpoint);
  const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: 'emails' }));
  const url = `${front.endpoint}${new URL(String(QueueUrl)).pathname}`;
  const replayed = await journal.replay([url], sqs.endpoint);
  return {
    client,
    url,
    replayed,
    stop: async () => {
      client.destroy();
      await front.stop();
      await sqs.stop();
    },
  };
}

async function receiveAll(client: ReturnType<typeof sqsClient>, url: string) {
  const messages = [];
  for (let polls = 0; polls < 20; polls++) {
    const { Messages = [] } = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: 60,
      }),
    );
    if (Messages.length === 0) break;
    messages.push(...Messages);
  }
  return messages;
}

describe('the local SQS journal', () => {
  it('sends again, after a restart, exactly the messages that were sent and not deleted', async () => {
    const file = join(dir, 'journal.jsonl');
    const first = await startQueues(file);
    expect(first.replayed).toBe(0);
    await first.client.send(
      new SendMessageBatchCommand({
        QueueUrl: first.url,
        Entries: Array.from({ length: 10 }, (_, n) => ({ Id: String(n), MessageBody: `m${n}` })),
      }),
    );
    await first.client.send(new SendMessageCommand({ QueueUrl: first.url, MessageBody: 'm10' }));
    const received = await receiveAll(first.client, first.url);
    expect(received).toHaveLength(11);
    const done = received.filter((message) => ['m0', 'm1', 'm2'].includes(String(message.Body)));
    await first.client.send(
      new DeleteMessageBatchCommand({
        QueueUrl: first.url,
        Entries: done.map((message, n) => ({ Id: String(n), ReceiptHandle: message.ReceiptHandle })),
      }),
    );
    // As after kill -9: local SQS and everything in it is gone; only the journal file is left.
    await first.stop();

    const second = await startQueues(file);
    expect(second.replayed).toBe(8);
    const again = (await receiveAll(second.client, second.url)).map((message) => message.Body).sort();
    expect(again).toEqual(['m10', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
    await second.stop();

    // Still pending (received, never deleted): a third start sends them once more, no more, and lines
    // a crash cut short or that are not entries at all are passed over.
    appendFileSync(file, 'null\n1\n{"op":"send"}\n{"op":"send","id":"x","queue":"emails","bo');
    const third = await startQueues(file);
    expect(third.replayed).toBe(8);
    await third.stop();
  });
});
