import { randomUUID } from 'node:crypto';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { DynamoDeliveries } from '../../lambdas/core/jobs/dynamodb/dynamo-deliveries';
import { DynamoJobContents } from '../../lambdas/core/jobs/dynamodb/dynamo-job-contents';
import { DynamoJobStore } from '../../lambdas/core/jobs/dynamodb/dynamo-job-store';
import { acceptedJob, scheduledJob } from '../../lambdas/core/jobs/job-status';
import { localDocumentClient, tableNamed } from '../support/local-tables';

// Personal data goes when its retention ends: each writer gives the items it makes their TTL
// (`expires_at`, seconds), counted from the job's start (its send_at, when scheduled).

const { client, destroy } = localDocumentClient();
afterAll(() => destroy());
const [jobsTable, contentsTable, deliveriesTable] = ['DataJobs', 'DataJobContents', 'DataDeliveries'].map(
  tableNamed,
) as [string, string, string];
const NOW = new Date('2026-12-04T10:00:00Z');
const seconds = (iso: string) => Math.floor(Date.parse(iso) / 1000);
const DAY = 86_400;

describe('retention on DynamoDB Local', () => {
  it("gives a job's content and recipient lists ledgerRetentionDays, and its summary jobRetentionDays, from its start", async () => {
    const contents = new DynamoJobContents({ client, tableName: contentsTable, retentionDays: 90 });
    const jobs = new DynamoJobStore({ client, tableName: jobsTable, retentionDays: 400 });
    const [now, later] = [randomUUID(), randomUUID()];
    const sendAt = '2026-12-20T09:00:00.000Z';
    for (const [jobId, startsAt] of [
      [now, undefined],
      [later, sendAt],
    ] as const) {
      await contents.put({
        job_id: jobId,
        template: 'Hello {name}',
        subject: null,
        cc: ['board@example.org'],
        accepted_at: NOW.toISOString(),
        ...(startsAt ? { starts_at: startsAt } : {}),
        // Two chunks of recipients.
        recipients: Array.from({ length: 1_001 }, (_, n) => `r${String(n).padStart(4, '0')}@example.org`),
        request_hash: 'hash',
      });
      const fields = {
        job_id: jobId,
        api_key_id: 'key-1',
        request_hash: 'hash',
        created_at: NOW.toISOString(),
      };
      await jobs.create(
        startsAt
          ? scheduledJob(fields, 1_001, startsAt)
          : acceptedJob({ ...fields, enqueue_deadline: NOW.toISOString() }, 1_001),
      );
      const from = seconds(startsAt ?? NOW.toISOString());
      const { Items = [] } = await client.send(
        new QueryCommand({
          TableName: contentsTable,
          KeyConditionExpression: 'job_id = :id',
          ExpressionAttributeValues: { ':id': jobId },
        }),
      );
      // Part 0 (template, subject, cc) and both chunks of recipients.
      expect(Items.map((item) => [item.part, item.expires_at])).toEqual([
        [0, from + 90 * DAY],
        [1, from + 90 * DAY],
        [2, from + 90 * DAY],
      ]);
      const { Item } = await client.send(new GetCommand({ TableName: jobsTable, Key: { job_id: jobId } }));
      expect(Item?.expires_at).toBe(from + 400 * DAY);
      // Read back, the job is as it was written: the expiry is the table's, not the job's.
      expect((await jobs.get(jobId))?.job_id).toBe(jobId);
    }
  });

  it('gives each delivery a consumer makes ledgerRetentionDays from its first write, kept by later writes', async () => {
    let now = NOW.getTime();
    const deliveries = new DynamoDeliveries({
      client,
      jobsTable,
      deliveriesTable,
      leaseMs: 30_000,
      retentionDays: 90,
      now: () => new Date(now),
    });
    const jobId = randomUUID();
    const claimed = await deliveries.claim(jobId, [{ recipient: 'one@example.org', attempts: 1 }]);
    expect(claimed.get('one@example.org')?.state).toBe('claimed');
    await deliveries.claimChunk(jobId, 0, ['a@example.org', 'b@example.org']);
    const expiry = async (key: Record<string, unknown>) =>
      (await client.send(new GetCommand({ TableName: deliveriesTable, Key: key }))).Item?.expires_at;
    expect(await expiry({ job_id: jobId, recipient: 'one@example.org' })).toBe(
      seconds(NOW.toISOString()) + 90 * DAY,
    );
    // A later claim of the same recipient (its lease over) keeps the first expiry.
    now += 60_000;
    await deliveries.claim(jobId, [{ recipient: 'one@example.org', attempts: 2 }]);
    expect(await expiry({ job_id: jobId, recipient: 'one@example.org' })).toBe(
      seconds(NOW.toISOString()) + 90 * DAY,
    );
    const chunk = await client.send(
      new QueryCommand({
        TableName: deliveriesTable,
        KeyConditionExpression: 'job_id = :id',
        ExpressionAttributeValues: { ':id': `${jobId}#chunks` },
      }),
    );
    expect(chunk.Items?.map((item) => item.expires_at)).toEqual([seconds(NOW.toISOString()) + 90 * DAY]);
  });
});
