import { randomUUID } from 'node:crypto';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { cancelJob } from '../../lambdas/core/jobs/cancel-job';
import type { DeliveryOutcome, FailureReason } from '../../lambdas/core/jobs/deliveries';
import { DynamoDeliveries } from '../../lambdas/core/jobs/dynamodb/dynamo-deliveries';
import { DynamoJobContents } from '../../lambdas/core/jobs/dynamodb/dynamo-job-contents';
import { DynamoJobStore } from '../../lambdas/core/jobs/dynamodb/dynamo-job-store';
import type { JobRecord } from '../../lambdas/core/jobs/job';
import { acceptedJob } from '../../lambdas/core/jobs/job-status';
import { retryJob } from '../../lambdas/core/jobs/retry-job';
import { type EmailMessage, recipientsOf } from '../../lambdas/core/queue/email-queue';
import { DynamoSuppressionList } from '../../lambdas/core/suppressions/dynamodb/dynamo-suppression-list';
import { localDocumentClient, tableNamed } from '../support/local-tables';
import { startOutcomeCounter } from '../support/outcome-counter';
import { waitFor } from '../support/runtime-process';

const { client, destroy } = localDocumentClient();
// The jobs' counters follow the deliveries' stream, as in the stack.
const counter = await startOutcomeCounter();
afterAll(async () => {
  await counter.stop();
  destroy();
});
const jobsTable = tableNamed('DataJobs');
const jobs = new DynamoJobStore({ client, tableName: jobsTable });
const contents = new DynamoJobContents({ client, tableName: tableNamed('DataJobContents') });
const deliveries = new DynamoDeliveries({
  client,
  jobsTable,
  deliveriesTable: tableNamed('DataDeliveries'),
  leaseMs: 30_000,
});
const suppressions = new DynamoSuppressionList({ client, tableName: tableNamed('DataSuppressions') });
const API_KEY = 'job-control-test';

async function newJob(recipients: number): Promise<string> {
  const jobId = randomUUID();
  const at = new Date().toISOString();
  await contents.put({
    job_id: jobId,
    template: 'Hi {name}',
    subject: null,
    cc: [],
    accepted_at: at,
    recipients: Array.from({ length: recipients }, (_, n) => `r${n}@example.org`),
    request_hash: 'x',
  });
  await jobs.create(
    acceptedJob(
      { job_id: jobId, api_key_id: API_KEY, request_hash: 'x', created_at: at, enqueue_deadline: at },
      recipients,
    ),
  );
  return jobId;
}

const job = async (jobId: string) =>
  (await client.send(new GetCommand({ TableName: jobsTable, Key: { job_id: jobId }, ConsistentRead: true })))
    .Item as JobRecord;

const countedOn = (record: JobRecord) =>
  record.sent + record.failed + (record.suppressed ?? 0) + (record.cancelled ?? 0);

/**
 * Claims each recipient and records the outcome given for it, as a consumer would, then waits until
 * the stream's counter has counted them on the job. `ended`: whether that ended the job.
 */
async function processed(
  jobId: string,
  outcomes: Record<string, { status: DeliveryOutcome['status']; reason?: FailureReason }>,
) {
  const before = countedOn(await job(jobId));
  const claims = await deliveries.claim(
    jobId,
    Object.keys(outcomes).map((recipient) => ({ recipient, attempts: 1 })),
  );
  const result = await deliveries.record(
    jobId,
    Object.entries(outcomes).map(([recipient, { status, reason }]) => {
      const claim = claims.get(recipient);
      if (claim?.state !== 'claimed') throw new Error(`${recipient} was not claimed`);
      return {
        recipient,
        status,
        cc: [],
        attempts: 1,
        claimToken: claim.token,
        ...(status === 'failed' ? { error: `failed: ${reason}`, reason } : {}),
      };
    }),
  );
  const counted = await waitFor(
    () => job(jobId),
    (record) => countedOn(record) === before + result.recorded.length,
    10_000,
  );
  return { ...result, ended: counted.active === undefined };
}

describe('cancelling a job, on DynamoDB Local', () => {
  it('records the cancel once; the last outcome then ends the job cancelled, not completed', async () => {
    const jobId = await newJob(3);
    await processed(jobId, { 'a@example.org': { status: 'sent' } });

    expect((await jobs.sendingLook(jobId)).cancelled).toBe(false);
    const cancelling = await cancelJob({ jobs, contents }, { jobId, apiKeyId: API_KEY });
    expect(cancelling.status).toBe('cancelling');
    expect((await jobs.sendingLook(jobId)).cancelled).toBe(true);
    // Cancelling again answers the job as it is, and changes nothing.
    const again = await cancelJob({ jobs, contents }, { jobId, apiKeyId: API_KEY });
    expect(again.cancel_requested_at).toBe(cancelling.cancel_requested_at);

    // A middle write that believed the job running learns otherwise, and leaves it cancelling.
    const middle = await processed(jobId, { 'b@example.org': { status: 'sent' } });
    expect(middle.ended).toBe(false);
    expect((await job(jobId)).status).toBe('cancelling');

    const last = await processed(jobId, { 'c@example.org': { status: 'cancelled' } });
    expect(last.ended).toBe(true);
    expect(await job(jobId)).toMatchObject({
      status: 'cancelled',
      sent: 2,
      cancelled: 1,
      remaining: 0,
      completed_at: expect.any(String),
    });
    expect((await job(jobId)).active).toBeUndefined();
    // Ended cancelled: cancelling once more still answers the same.
    expect((await cancelJob({ jobs, contents }, { jobId, apiKeyId: API_KEY })).status).toBe('cancelled');
  });

  it('refuses to cancel a job that completed, naming its status, and changes nothing', async () => {
    const jobId = await newJob(1);
    await processed(jobId, { 'a@example.org': { status: 'sent' } });
    const before = await job(jobId);

    await expect(cancelJob({ jobs, contents }, { jobId, apiKeyId: API_KEY })).rejects.toMatchObject({
      status: 409,
      message: `Job ${jobId} is completed: it has ended, so there is nothing to cancel.`,
    });
    expect(await job(jobId)).toEqual(before);
  });

  it("answers another key's job as absent", async () => {
    const jobId = await newJob(1);
    await expect(cancelJob({ jobs, contents }, { jobId, apiKeyId: 'another-key' })).rejects.toMatchObject({
      status: 404,
    });
    expect((await jobs.sendingLook(jobId)).cancelled).toBe(false);
  });
});

describe("retrying a job's failures, on DynamoDB Local", () => {
  const queued: EmailMessage[] = [];
  const deps = {
    jobs,
    contents,
    deliveries,
    suppressions,
    queue: { enqueue: async (messages: EmailMessage[]) => void queued.push(...messages) },
  };
  const retry = (jobId: string, idempotencyKey?: string) =>
    retryJob(deps, { jobId, apiKeyId: API_KEY, idempotencyKey, enqueueDeadline: new Date() });

  it('requeues only retryable failures of unsuppressed addresses, and the counts then move exactly', async () => {
    const jobId = await newJob(5);
    const suppressedAddress = `gone-${randomUUID()}@example.org`;
    await processed(jobId, {
      'sent@example.org': { status: 'sent' },
      'rejected@example.org': { status: 'failed', reason: 'rejected' },
      'dead@example.org': { status: 'failed', reason: 'deadLetter' },
      'deleted@example.org': { status: 'failed', reason: 'nonprofitDeleted' },
      [suppressedAddress]: { status: 'failed', reason: 'rejected' },
    });
    await suppressions.add({ email: suppressedAddress, reason: 'manual' });
    expect(await job(jobId)).toMatchObject({ status: 'completed', sent: 1, failed: 4 });

    queued.length = 0;
    const retried = await retry(jobId, 'retry-once');
    expect(retried).toMatchObject({
      replayed: false,
      retrying: 2,
      notRetried: { nonprofit_deleted: 1, too_large: 0, suppressed: 1, unknown: 0 },
    });
    expect(queued.flatMap(recipientsOf).sort()).toEqual(['dead@example.org', 'rejected@example.org']);
    expect(await job(jobId)).toMatchObject({
      status: 'processing',
      active: 'yes',
      sent: 1,
      failed: 2,
      remaining: 2,
      retried: 2,
      retries: 1,
    });
    expect((await job(jobId)).completed_at).toBeUndefined();
    // Queued again: no outcome, so the sweeper would enqueue them if their messages were lost.
    expect(await deliveries.processedRecipients(jobId)).toEqual(
      new Set(['sent@example.org', 'deleted@example.org', suppressedAddress]),
    );

    // The same key again is a replay: nothing written, nothing enqueued.
    expect(await retry(jobId, 'retry-once')).toMatchObject({ replayed: true });
    expect(queued).toHaveLength(2);

    // One now goes, one fails again: failed moves 2 -> 1 for the sent one, back to 2... plus the 1 left alone.
    const outcome = await processed(jobId, {
      'rejected@example.org': { status: 'sent' },
      'dead@example.org': { status: 'failed', reason: 'deadLetter' },
    });
    expect(outcome.ended).toBe(true);
    expect(await job(jobId)).toMatchObject({ status: 'completed', sent: 2, failed: 3, remaining: 0 });
    expect((await job(jobId)).active).toBeUndefined();
  });

  it('refuses a job with nothing retryable, a running job, and a cancelled one, changing nothing', async () => {
    const done = await newJob(1);
    await processed(done, { 'deleted@example.org': { status: 'failed', reason: 'nonprofitDeleted' } });
    await expect(retry(done)).rejects.toMatchObject({
      status: 409,
      message: `Job ${done} has nothing to retry: none of its 1 failures may pass on a second try (1 nonprofit deleted).`,
    });

    const running = await newJob(2);
    await processed(running, { 'a@example.org': { status: 'failed', reason: 'rejected' } });
    const before = await job(running);
    await expect(retry(running)).rejects.toMatchObject({
      status: 409,
      message: `Job ${running} is processing: its failures can be retried once it has completed.`,
    });
    expect(await job(running)).toEqual(before);

    await cancelJob({ jobs, contents }, { jobId: running, apiKeyId: API_KEY });
    await processed(running, { 'b@example.org': { status: 'cancelled' } });
    await expect(retry(running)).rejects.toMatchObject({
      status: 409,
      message: `Job ${running} is cancelled: a cancelled job is not retried.`,
    });
  });

  it('cancels a job that ended and was retried while the cancel was on its way', async () => {
    const jobId = await newJob(1);
    // The cancel reads the job running; before its write the job ends, and a retry starts it again.
    let interleaved = false;
    const requestCancel = async (id: string, now: Date) => {
      if (interleaved) return jobs.requestCancel(id, now);
      interleaved = true;
      await processed(jobId, { 'a@example.org': { status: 'failed', reason: 'rejected' } });
      const missed = await jobs.requestCancel(id, now);
      await retry(jobId);
      return missed;
    };

    const cancelled = await cancelJob(
      {
        jobs: { get: (id) => jobs.get(id), requestCancel, cancelScheduled: () => Promise.resolve(false) },
        contents,
      },
      { jobId, apiKeyId: API_KEY },
    );

    // Not a 409 naming a running job as ended: the cancel applies to the retry.
    expect(interleaved).toBe(true);
    expect(cancelled.status).toBe('cancelling');
    await processed(jobId, { 'a@example.org': { status: 'cancelled' } });
    expect(await job(jobId)).toMatchObject({ status: 'cancelled', failed: 0, cancelled: 1, remaining: 0 });
  });

  it('lets one of two retries at once take the job; the other is refused', async () => {
    const jobId = await newJob(2);
    await processed(jobId, {
      'a@example.org': { status: 'failed', reason: 'rejected' },
      'b@example.org': { status: 'failed', reason: 'rejected' },
    });
    const results = await Promise.allSettled([retry(jobId), retry(jobId)]);
    expect(results.filter(({ status }) => status === 'fulfilled')).toHaveLength(1);
    expect(results.filter(({ status }) => status === 'rejected')).toHaveLength(1);
    expect(await job(jobId)).toMatchObject({ failed: 0, remaining: 2, retried: 2, retries: 1 });
  });

  it('requeues a large retry in chunks, one transaction per 99 recipients', async () => {
    const recipients = Array.from({ length: 150 }, (_, n) => `member${n}@example.org`);
    const jobId = await newJob(recipients.length);
    for (let start = 0; start < recipients.length; start += 50) {
      await processed(
        jobId,
        Object.fromEntries(
          recipients
            .slice(start, start + 50)
            .map((r) => [r, { status: 'failed' as const, reason: 'deadLetter' as const }]),
        ),
      );
    }
    queued.length = 0;
    expect(await retry(jobId)).toMatchObject({ retrying: 150 });
    expect(queued).toHaveLength(150);
    expect(await job(jobId)).toMatchObject({ status: 'processing', failed: 0, remaining: 150 });
    // Each is claimable again.
    const claims = await deliveries.claim(
      jobId,
      recipients.slice(0, 3).map((recipient) => ({ recipient, attempts: 1 })),
    );
    expect([...claims.values()].map(({ state }) => state)).toEqual(['claimed', 'claimed', 'claimed']);
  });
});
