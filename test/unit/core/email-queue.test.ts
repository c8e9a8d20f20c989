import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  ADDRESS_MAX_LENGTH,
  EMAIL_MAX_LENGTH,
  NAME_MAX_LENGTH,
} from '../../../lambdas/core/nonprofits/nonprofit';
import {
  type ChunkMessage,
  chunkMessage,
  chunkMessages,
  messageBody,
  RECIPIENTS_PER_MESSAGE,
  SqsEmailQueue,
  sendBatches,
} from '../../../lambdas/core/queue/email-queue';

const JOB = '0b6f1c52-5f1e-4d0c-9a34-7d1b1f0c2a11';
const people = Array.from({ length: 23 }, (_, n) => `p${String(n).padStart(2, '0')}@example.org`);
const valuesOf = (emails: readonly string[]) =>
  new Map(emails.map((email) => [email, { email, name: `Name ${email}`, address: 'A', created_at: 'x' }]));

describe('chunkMessages', () => {
  it("carries each chunk's names and addresses, only those two fields, in the order of its recipients", () => {
    const messages = chunkMessages(JOB, people, { values: valuesOf(people) });
    expect(messages.map(({ chunk, recipients }) => [chunk, recipients.length])).toEqual([
      [0, 10],
      [1, 10],
      [2, 3],
    ]);
    expect(messages[2]).toEqual({
      job_id: JOB,
      chunk: 2,
      recipients: ['p20@example.org', 'p21@example.org', 'p22@example.org'],
      nonprofits: ['p20', 'p21', 'p22'].map((p) => ({ name: `Name ${p}@example.org`, address: 'A' })),
    });
    for (const message of messages) expect(chunkMessage.safeParse(message).success).toBe(true);
  });

  it('carries no values in a chunk missing any of them, and keeps chunk numbers with `only`', () => {
    const values = valuesOf(people.filter((email) => email !== 'p03@example.org'));
    const messages = chunkMessages(JOB, people, {
      values,
      only: new Set(['p03@example.org', 'p04@example.org', 'p15@example.org']),
    });
    expect(messages).toEqual([
      { job_id: JOB, chunk: 0, recipients: ['p03@example.org', 'p04@example.org'] },
      {
        job_id: JOB,
        chunk: 1,
        recipients: ['p15@example.org'],
        nonprofits: [{ name: 'Name p15@example.org', address: 'A' }],
      },
    ]);
  });

  it('refuses values that do not match the recipients one for one', () => {
    const [message] = chunkMessages(JOB, people.slice(0, 2), { values: valuesOf(people) }) as [ChunkMessage];
    expect(chunkMessage.safeParse({ ...message, nonprofits: message.nonprofits?.slice(1) }).success).toBe(
      false,
    );
  });
});

describe('SqsEmailQueue.enqueue', () => {
  const sqs = mockClient(SQSClient);
  beforeEach(() => {
    sqs.reset();
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
  });

  it("keeps each SendMessageBatch within SQS's 256 KiB when chunks carry the longest values", async () => {
    // The longest a chunk can be: every field at its maximum length, in three-byte characters (a
    // length counts UTF-16 units: none takes more bytes per unit, and JSON leaves them unescaped).
    const long = (length: number) => '中'.repeat(length);
    const emails = Array.from(
      { length: 100 },
      (_, n) => `${String(n).padStart(3, '0')}${'x'.repeat(EMAIL_MAX_LENGTH - 15)}@example.org`,
    );
    const values = new Map(
      emails.map((email) => [email, { name: long(NAME_MAX_LENGTH), address: long(ADDRESS_MAX_LENGTH) }]),
    );
    const messages = chunkMessages(JOB, emails, { values });
    expect(messages).toHaveLength(100 / RECIPIENTS_PER_MESSAGE);

    await new SqsEmailQueue(new SQSClient({}), 'https://sqs.example/q').enqueue(messages);

    const calls = sqs.commandCalls(SendMessageBatchCommand).map((call) => call.args[0].input.Entries ?? []);
    expect(calls.flat()).toHaveLength(messages.length);
    for (const entries of calls) {
      const bytes = entries.reduce((sum, entry) => sum + Buffer.byteLength(entry.MessageBody ?? ''), 0);
      expect(bytes).toBeLessThanOrEqual(256 * 1024);
      expect(entries.length).toBeLessThanOrEqual(10);
    }
  });
});

describe('sendBatches', () => {
  it('starts a new batch before the bodies would pass 256 KiB, and at ten bodies', () => {
    const big = 'x'.repeat(60 * 1024);
    const batches = sendBatches([big, big, big, big, big, 'a', 'b']);
    expect(batches.map((batch) => batch.length)).toEqual([4, 3]);
    expect(sendBatches(Array.from({ length: 23 }, () => 'small')).map((batch) => batch.length)).toEqual([
      10, 10, 3,
    ]);
  });
});

describe('messageBody', () => {
  it('writes the two characters SQS refuses as JSON escapes, which parse back to the same values', () => {
    const [message] = chunkMessages(JOB, ['a@example.org'], {
      values: new Map([['a@example.org', { name: 'Odd \uFFFE name \uFFFF', address: 'A' }]]),
    }) as [ChunkMessage];
    const body = messageBody(message);
    expect(body).not.toMatch(/[\uFFFE\uFFFF]/);
    expect(JSON.parse(body)).toEqual(message);
  });
});
