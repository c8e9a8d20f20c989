import { randomUUID } from 'node:crypto';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import type { DeliveryStatus } from '../../lambdas/core/jobs/deliveries';
import { DynamoJobStore } from '../../lambdas/core/jobs/dynamodb/dynamo-job-store';
import { DynamoOutcomeCounts } from '../../lambdas/core/jobs/dynamodb/dynamo-outcome-counts';
import type { JobRecord } from '../../lambdas/core/jobs/job';
import { acceptedJob } from '../../lambdas/core/jobs/job-status';
import { countOutcomes, type DeliveryChange } from '../../lambdas/core/jobs/outcome-counts';
import { localDocumentClient, tableNamed } from '../support/local-tables';

const { client, destroy } = localDocumentClient();
afterAll(destroy);
const jobsTable = tableNamed('DataJobs');
const jobs = new DynamoJobStore({ client, tableName: jobsTable });
const deps = { counts: new DynamoOutcomeCounts({ client, jobsTable }), jobs, log: () => undefined };

async function newJob(recipients: number): Promise<string> {
  const jobId = randomUUID();
  const at = new Date().toISOString();
  await jobs.create(
    acceptedJob(
      { job_id: jobId, api_key_id: 'counts-test', request_hash: 'x', created_at: at, enqueue_deadline: at },
      recipients,
    ),
  );
  return jobId;
}

const job = async (jobId: string) =>
  (await client.send(new GetCommand({ TableName: jobsTable, Key: { job_id: jobId }, ConsistentRead: true })))
    .Item as JobRecord;

/** A recipient's stream: claimed (a new item), then its outcome. */
const delivered = (jobId: string, n: number, outcome: DeliveryStatus = 'sent'): DeliveryChange[] => [
  { eventId: `${jobId}-${n}-claim`, jobId, after: 'sending', streamCounted: false },
  { eventId: `${jobId}-${n}-outcome`, jobId, before: 'sending', after: outcome, streamCounted: true },
];

describe('counting outcomes from the deliveries stream, on DynamoDB Local', () => {
  it('counts a batch handed over again once, and only the records a longer retry adds', async () => {
    const jobId = await newJob(4);
    const batch = [...delivered(jobId, 1), ...delivered(jobId, 2, 'failed')];

    expect(await countOutcomes(deps, batch)).toMatchObject({ counted: 2, completedJobs: [] });
    // Lambda hands the same batch over again (another job in it failed): nothing changes.
    expect(await countOutcomes(deps, batch)).toMatchObject({ counted: 0 });
    // Handed over from the same first record with more after it: only those are counted.
    const longer = [...batch, ...delivered(jobId, 3, 'suppressed')];
    expect(await countOutcomes(deps, longer)).toMatchObject({ counted: 1 });
    expect(await job(jobId)).toMatchObject({
      sent: 1,
      failed: 1,
      suppressed: 1,
      remaining: 1,
      status: 'processing',
    });

    // The next batch brings the last one: the job ends, exactly once.
    const last = delivered(jobId, 4);
    const ended = await countOutcomes(deps, last);
    expect(ended.completedJobs).toEqual([{ jobId, durationSeconds: expect.any(Number) }]);
    expect((await countOutcomes(deps, last)).completedJobs).toEqual([]);
    expect(await job(jobId)).toMatchObject({ status: 'completed', sent: 2, failed: 1, remaining: 0 });
    expect((await job(jobId)).active).toBeUndefined();
  });

  it('counts parts of one job from batches at once (other shards) without losing or doubling any', async () => {
    const jobId = await newJob(40);
    const batches = Array.from({ length: 8 }, (_, b) =>
      Array.from({ length: 5 }, (_, n) => delivered(jobId, b * 5 + n)).flat(),
    );
    await Promise.all(batches.map((batch) => countOutcomes(deps, batch)));
    // And each again, as retries would.
    await Promise.all(batches.map((batch) => countOutcomes(deps, batch)));
    expect(await job(jobId)).toMatchObject({ status: 'completed', sent: 40, remaining: 0 });
  });

  it('never stops on more outcomes than a job has left: counts what fits, ends the job and says what it dropped', async () => {
    const jobId = await newJob(2);
    const batch = [...delivered(jobId, 1), ...delivered(jobId, 2), ...delivered(jobId, 3)];
    expect(await countOutcomes(deps, batch)).toMatchObject({
      counted: 2,
      dropped: 1,
      completedJobs: [{ jobId }],
    });
    expect(await job(jobId)).toMatchObject({ status: 'completed', sent: 2, remaining: 0 });
  });

  it('ignores what records no outcome: claims, changes between outcomes, a retry taking a failure back', async () => {
    const jobId = await newJob(2);
    const changes: DeliveryChange[] = [
      { eventId: `${jobId}-a`, jobId, after: 'sending', streamCounted: false },
      { eventId: `${jobId}-b`, jobId, before: 'sending', after: 'failed', streamCounted: true },
      // A report noted on a sent email, a retry's `failed` → `queued`: neither is a new outcome.
      { eventId: `${jobId}-c`, jobId, before: 'sent', after: 'sent', streamCounted: true },
      { eventId: `${jobId}-d`, jobId, before: 'failed', after: 'queued', streamCounted: true },
      // Claimed again after the retry, and sent: a new outcome.
      { eventId: `${jobId}-e`, jobId, before: 'queued', after: 'sending', streamCounted: true },
      { eventId: `${jobId}-f`, jobId, before: 'sending', after: 'sent', streamCounted: true },
      // An outcome the version before wrote (counted in its own transaction) while a deploy replaced it.
      { eventId: `${jobId}-g`, jobId, before: 'sending', after: 'sent', streamCounted: false },
    ];
    expect(await countOutcomes(deps, changes)).toMatchObject({ counted: 2 });
  });

  it('ends a cancelled job cancelled, and counts nothing on a job that does not exist', async () => {
    const jobId = await newJob(2);
    await jobs.requestCancel(jobId, new Date());
    await countOutcomes(deps, [...delivered(jobId, 1), ...delivered(jobId, 2, 'cancelled')]);
    expect(await job(jobId)).toMatchObject({ status: 'cancelled', sent: 1, cancelled: 1, remaining: 0 });

    const gone = randomUUID();
    expect(await countOutcomes(deps, delivered(gone, 1))).toMatchObject({ counted: 0 });
  });
});

describe("a job's counters set from its ledger, on DynamoDB Local", () => {
  it('ends a job whose counting stopped short, only if nothing was counted since it was read', async () => {
    const jobId = await newJob(3);
    await countOutcomes(deps, delivered(jobId, 1));
    const read = await job(jobId);
    const tally = { sent: 2, failed: 1, suppressed: 0, cancelled: 0 };

    // Counted on since it was read: the counter is alive, and the sweeper leaves the job to it.
    await countOutcomes(deps, delivered(jobId, 2));
    expect(await jobs.countFromLedger(read, tally, new Date())).toBe(false);
    expect(await job(jobId)).toMatchObject({ status: 'processing', sent: 2, remaining: 1 });

    // Nothing counted since: the ledger's tally is the job's, and it ends once.
    const still = await job(jobId);
    expect(await jobs.countFromLedger(still, tally, new Date())).toBe(true);
    expect(await job(jobId)).toMatchObject({ status: 'completed', sent: 2, failed: 1, remaining: 0 });
    expect((await job(jobId)).active).toBeUndefined();
    expect(await jobs.countFromLedger(await job(jobId), tally, new Date())).toBe(false);
  });
});
