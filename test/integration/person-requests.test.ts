import { randomUUID } from 'node:crypto';
import { PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { DynamoJobContents } from '../../lambdas/core/jobs/dynamodb/dynamo-job-contents';
import { DynamoLedgerSearch } from '../../lambdas/core/jobs/dynamodb/dynamo-ledger-search';
import { DynamoNonprofitRepository } from '../../lambdas/core/nonprofits/dynamodb/dynamo-nonprofit-repository';
import { erasedKeyWith } from '../../lambdas/core/people/address-keys';
import { DynamoPersonRequests } from '../../lambdas/core/people/dynamodb/dynamo-person-requests';
import type { EmailOnRecord, PersonRequestMessage } from '../../lambdas/core/people/person-requests';
import {
  acceptPersonRequest,
  type PersonRequestWorkerDependencies,
  RequestUnderWayError,
  runPersonRequestStep,
} from '../../lambdas/core/people/run-person-request';
import { DynamoSuppressionList } from '../../lambdas/core/suppressions/dynamodb/dynamo-suppression-list';
import { localDocumentClient, tableNamed } from '../support/local-tables';

/** The address key, as the API's functions make it (an export looks for an erasure's hold by it). */
const keys = { erasedKeyOf: async (email: string) => erasedKeyWith('test-address-key', email) };
const { client, destroy } = localDocumentClient();
afterAll(() => destroy());

const tables = {
  requests: tableNamed('DataPersonRequests'),
  deliveries: tableNamed('DataDeliveries'),
  contents: tableNamed('DataJobContents'),
  nonprofits: tableNamed('DataNonprofits'),
  suppressions: tableNamed('DataSuppressions'),
};
const requests = new DynamoPersonRequests({ client, tableName: tables.requests });
const contents = new DynamoJobContents({ client, tableName: tables.contents });
const nonprofits = new DynamoNonprofitRepository({ client, tableName: tables.nonprofits });
const suppressions = new DynamoSuppressionList({ client, tableName: tables.suppressions });
const operator = { source: 'api', api_key_id: 'key-ops' } as const;

/** The queue as the worker sees it: messages kept in order, every step run until none is left. */
function memoryQueue() {
  const sent: PersonRequestMessage[] = [];
  return {
    sent,
    send: async (messages: readonly PersonRequestMessage[]) => {
      sent.push(...messages);
    },
  };
}

/** A worker over DynamoDB Local reading one item a page, so each segment is walked in many steps. */
function worker(queue: ReturnType<typeof memoryQueue>, segments = 3): PersonRequestWorkerDependencies {
  return {
    requests,
    queue,
    ledger: new DynamoLedgerSearch({ client, deliveriesTable: tables.deliveries, contents, pageSize: 1 }),
    nonprofits,
    suppressions,
    log: () => {},
    segments,
  };
}

/** Runs every queued step, each as a new invocation with time for two pages, until the queue is empty. */
async function drain(queue: ReturnType<typeof memoryQueue>, deps: PersonRequestWorkerDependencies) {
  let steps = 0;
  for (let message = queue.sent.shift(); message; message = queue.sent.shift()) {
    let pages = 0;
    await runPersonRequestStep(deps, message, () => ++pages < 2);
    steps++;
  }
  return steps;
}

async function job(subject: string, cc: string[] = []) {
  const jobId = randomUUID();
  await contents.put({
    job_id: jobId,
    recipients: [],
    request_hash: 'hash',
    template: 'Dear {{name}}',
    html: null,
    subject,
    cc,
    accepted_at: new Date().toISOString(),
  });
  return jobId;
}

const delivery = (item: Record<string, unknown>) =>
  client.send(new PutCommand({ TableName: tables.deliveries, Item: item }));

async function allFindings(requestId: string): Promise<EmailOnRecord[][]> {
  const pages: EmailOnRecord[][] = [];
  let cursor: string | undefined;
  do {
    const page = await requests.findings(requestId, { limit: 1, ...(cursor ? { cursor } : {}) });
    pages.push(page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return pages;
}

describe("a person's data export against DynamoDB Local", () => {
  it('finds the registry entry, the suppression, every email to the address and every copy to it, once each', async () => {
    const person = `${randomUUID().slice(0, 8)}@people.example.org`;
    const other = `${randomUUID().slice(0, 8)}@people.example.org`;
    await nonprofits.create({ email: person, name: 'Jane Person', address: '42 Private Lane' }, operator);
    await suppressions.add({ email: person, reason: 'unsubscribed' });
    const appeal = await job('Spring appeal');
    const newsletter = await job('Newsletter', [person]);
    const failedCopy = await job('Gala', [person]);
    const sentAt = '2026-12-01T10:00:00.000Z';
    await delivery({
      job_id: appeal,
      recipient: person,
      status: 'sent',
      message_id: 'ses-1',
      handed_over_at: sentAt,
      processed_at: sentAt,
      feedback: [
        { type: 'unsubscribe', at: sentAt, detail: 'Unsubscribed by the link in this email' },
        // A cc reader's unsubscribe, noted on the email it copied: theirs, never in this export.
        { type: 'unsubscribe', at: sentAt, detail: `Unsubscribed by the link in the copy to ${other}` },
      ],
    });
    // A sharded job: the partition key is `<job>#<shard>`; the person had a copy of another's email.
    await delivery({
      job_id: `${newsletter}#1`,
      recipient: other,
      status: 'sent',
      message_id: 'ses-2',
      handed_over_at: sentAt,
      copy_ids: { [person]: 'ses-copy-2', [`jo${person}`]: 'ses-copy-3' },
      feedback: [
        { type: 'bounce', at: sentAt, detail: `${other}: mailbox full` },
        { type: 'unsubscribe', at: sentAt, detail: `Unsubscribed by the link in the copy to ${person}` },
        // Another reader whose address ends with the person's: not theirs.
        { type: 'unsubscribe', at: sentAt, detail: `Unsubscribed by the link in the copy to jo${person}` },
      ],
    });
    // A cc on an email that was suppressed: no copy went.
    await delivery({ job_id: failedCopy, recipient: `x${other}`, status: 'suppressed', cc: [person] });
    await delivery({
      job_id: failedCopy,
      recipient: other,
      status: 'sent',
      message_id: 'ses-3',
      copy_errors: { [person]: 'refused' },
    });
    // Nothing of the person's: never listed.
    await delivery({ job_id: appeal, recipient: other, status: 'sent', message_id: 'ses-4' });

    const queue = memoryQueue();
    const { request_id } = await acceptPersonRequest(
      { requests, queue, keys },
      { kind: 'export', email: person, api_key_id: 'key-ops' },
    );
    expect(await requests.get(request_id)).toMatchObject({ status: 'queued', email: person });
    // A second export of the address while the first runs answers the first.
    const second = acceptPersonRequest(
      { requests, queue: memoryQueue(), keys },
      { kind: 'export', email: person, api_key_id: 'key-other' },
    );
    await expect(second).rejects.toBeInstanceOf(RequestUnderWayError);
    await expect(second).rejects.toMatchObject({ fields: { request_id } });

    const deps = worker(queue);
    // The start and the first walk step are each handed over twice while the request runs (SQS
    // delivers at least once): nothing is found twice, and the request completes once.
    const start = queue.sent.shift() as PersonRequestMessage;
    await runPersonRequestStep(deps, start, () => true);
    const firstWalk = queue.sent[0] as PersonRequestMessage;
    await runPersonRequestStep(deps, firstWalk, () => true);
    await runPersonRequestStep(deps, start, () => true);
    const steps = await drain(queue, deps);
    expect(steps).toBeGreaterThan(3);

    const done = await requests.get(request_id);
    expect(done).toMatchObject({ status: 'completed', segments_done: 3, segments_total: 3 });
    expect(done?.nonprofit).toMatchObject({ email: person, name: 'Jane Person', address: '42 Private Lane' });
    expect(done?.suppression).toMatchObject({ email: person, reason: 'unsubscribed' });
    const pages = await allFindings(request_id);
    expect(pages.every((page) => page.length <= 1)).toBe(true);
    const emails = pages.flat();
    expect(emails).toHaveLength(4);
    expect(emails).toEqual(
      expect.arrayContaining([
        {
          job_id: appeal,
          role: 'recipient',
          subject: 'Spring appeal',
          status: 'sent',
          sent_at: sentAt,
          message_id: 'ses-1',
          feedback: [{ type: 'unsubscribe', at: sentAt, detail: 'Unsubscribed by the link in this email' }],
        },
        {
          job_id: newsletter,
          role: 'cc',
          subject: 'Newsletter',
          status: 'sent',
          sent_at: sentAt,
          message_id: 'ses-copy-2',
          // The bounce was the recipient's; the reader's own unsubscribe is listed.
          feedback: [
            { type: 'unsubscribe', at: sentAt, detail: `Unsubscribed by the link in the copy to ${person}` },
          ],
        },
        {
          job_id: failedCopy,
          role: 'cc',
          subject: 'Gala',
          status: 'not_sent',
          sent_at: null,
          message_id: null,
          feedback: [],
        },
        {
          job_id: failedCopy,
          role: 'cc',
          subject: 'Gala',
          status: 'failed',
          sent_at: null,
          message_id: null,
          feedback: [],
        },
      ]),
    );

    // A cursor this request did not issue (another request's key, a part not made by it) is a 400
    // before DynamoDB sees it.
    const forged = (key: Record<string, unknown>) =>
      Buffer.from(JSON.stringify({ v: 1, q: `person-request:${request_id}`, k: key })).toString('base64url');
    for (const key of [
      { request_id: randomUUID(), part: 'email#x' },
      { request_id, part: `email#${'x'.repeat(2_000)}` },
    ])
      await expect(requests.findings(request_id, { limit: 5, cursor: forged(key) })).rejects.toMatchObject({
        status: 400,
      });

    // Complete, it releases the address: a new export may start.
    await expect(
      acceptPersonRequest(
        { requests, queue: memoryQueue(), keys },
        { kind: 'export', email: person, api_key_id: 'key-ops' },
      ),
    ).resolves.toMatchObject({ request_id: expect.any(String) });
  });

  it('completes with nothing found for an address it does not hold, and keeps it all 7 days', async () => {
    const stranger = `${randomUUID().slice(0, 8)}@nowhere.example.org`;
    const queue = memoryQueue();
    const { request_id } = await acceptPersonRequest(
      { requests, queue, keys },
      { kind: 'export', email: stranger, api_key_id: 'key-ops' },
    );
    await drain(queue, worker(queue, 2));
    expect(await requests.get(request_id)).toMatchObject({
      status: 'completed',
      nonprofit: null,
      suppression: null,
    });
    expect((await requests.findings(request_id, { limit: 10 })).items).toEqual([]);
    const { Items = [] } = await client.send(new ScanCommand({ TableName: tables.requests }));
    const mine = Items.filter((item) => item.request_id === request_id);
    expect(mine.length).toBeGreaterThan(0);
    for (const item of mine) {
      const days = (Number(item.expires_at) - Date.now() / 1000) / 86_400;
      expect(days).toBeGreaterThan(6.9);
      expect(days).toBeLessThanOrEqual(7);
    }
    // The hold is gone with the completion.
    expect(Items.some((item) => String(item.request_id).includes(stranger))).toBe(false);
  });

  it('leaves nothing behind when the start cannot be queued', async () => {
    const person = `${randomUUID().slice(0, 8)}@people.example.org`;
    const down = { send: async () => Promise.reject(new Error('SQS is down')) };
    await expect(
      acceptPersonRequest(
        { requests, queue: down, keys },
        { kind: 'export', email: person, api_key_id: 'k' },
      ),
    ).rejects.toThrow('SQS is down');
    const { Items = [] } = await client.send(new ScanCommand({ TableName: tables.requests }));
    expect(Items.filter((item) => JSON.stringify(item).includes(person))).toEqual([]);
  });
});
