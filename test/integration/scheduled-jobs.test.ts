import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { acceptJob } from '../../lambdas/core/jobs/accept-job';
import { cancelJob } from '../../lambdas/core/jobs/cancel-job';
import { DynamoJobContents } from '../../lambdas/core/jobs/dynamodb/dynamo-job-contents';
import { DynamoJobStore } from '../../lambdas/core/jobs/dynamodb/dynamo-job-store';
import { startScheduledJobs } from '../../lambdas/core/jobs/scheduled-jobs';
import { DynamoNonprofitRepository } from '../../lambdas/core/nonprofits/dynamodb/dynamo-nonprofit-repository';
import { type EmailMessage, recipientsOf } from '../../lambdas/core/queue/email-queue';
import { DynamoRecipientQuota } from '../../lambdas/core/quota/dynamodb/dynamo-recipient-quota';
import { localDocumentClient, tableNamed } from '../support/local-tables';
import { publishableEventIds, testOutbox } from '../support/outbox';

/**
 * Scheduled sends on DynamoDB Local, with a clock the test moves: accepted and counted now,
 * enqueued by the starter at their time (once, however many runs overlap), or cancelled before it
 * with the quota given back.
 */
const { client, destroy } = localDocumentClient();
afterAll(destroy);
const jobs = new DynamoJobStore({ client, tableName: tableNamed('DataJobs'), outbox: testOutbox() });
const contents = new DynamoJobContents({ client, tableName: tableNamed('DataJobContents') });
const nonprofits = new DynamoNonprofitRepository({ client, tableName: tableNamed('DataNonprofits') });
const quota = new DynamoRecipientQuota({ client, tableName: tableNamed('DataUsage'), limit: 100_000 });

/** A clock the test sets; waiting moves it on, at once. */
function clock(start: Date) {
  let now = start.getTime();
  return {
    now: () => new Date(now),
    wait: async (ms: number) => {
      now += ms;
    },
    set: (at: Date) => {
      now = at.getTime();
    },
  };
}

async function register(count: number): Promise<string[]> {
  const domain = `${randomUUID().slice(0, 8)}.scheduled.example.org`;
  const emails = Array.from({ length: count }, (_, n) => `member${n}@${domain}`);
  for (const email of emails) await nonprofits.create({ email, name: 'Member', address: '1 Main St' });
  return emails;
}

function setUp(start: Date) {
  const time = clock(start);
  const enqueued: EmailMessage[] = [];
  /** The clock's time at each enqueue: a job is never enqueued before its time. */
  const enqueuedAt: number[] = [];
  const queue = {
    enqueue: async (messages: EmailMessage[]) => {
      enqueuedAt.push(time.now().getTime());
      enqueued.push(...messages);
    },
  };
  const apiKeyId = `scheduled-${randomUUID().slice(0, 8)}`;
  const accept = (emails: string[], sendAt: Date, cc?: string[]) =>
    acceptJob(
      { jobs, contents, nonprofits, queue, quota, now: time.now },
      {
        apiKeyId,
        request: { emails, template: 'Hello {name}', send_at: sendAt.toISOString(), ...(cc ? { cc } : {}) },
        enqueueDeadline: new Date(time.now().getTime() + 30_000),
      },
    );
  const starter = () =>
    startScheduledJobs({
      jobs,
      contents,
      queue,
      now: time.now,
      wait: time.wait,
      deadline: new Date(time.now().getTime() + 210_000),
    });
  return { time, enqueued, enqueuedAt, accept, starter, apiKeyId };
}

describe('scheduled sends, on DynamoDB Local', () => {
  it('enqueues nothing at acceptance, then starts the job at its time, once, however many runs overlap', async () => {
    const start = new Date(Date.UTC(2031, 0, 6, 9, 0, 0));
    const { time, enqueued, enqueuedAt, accept, starter, apiKeyId } = setUp(start);
    const emails = await register(12);
    const sendAt = new Date(start.getTime() + 5 * 60_000);
    const { job } = await accept(emails, sendAt);
    expect(job).toMatchObject({ status: 'scheduled', send_at: sendAt.toISOString(), total_emails: 12 });
    expect(enqueued).toEqual([]);
    // Counted against the quota of the day it was accepted.
    expect((await quota.used(apiKeyId, start)).used).toBe(12);
    expect(await publishableEventIds(`job-accepted:${job.job_id}`)).toHaveLength(1);

    // A run three minutes early does not look that far ahead; one a few seconds before waits for it.
    time.set(new Date(sendAt.getTime() - 180_000));
    expect((await starter()).started).not.toContain(job.job_id);
    time.set(new Date(sendAt.getTime() - 20_000));
    const [first, second] = await Promise.all([starter(), starter()]);
    expect(
      [...(first?.started ?? []), ...(second?.started ?? [])].filter((id) => id === job.job_id),
    ).toHaveLength(1);
    expect(enqueuedAt).toHaveLength(1);
    expect(enqueuedAt[0]).toBeGreaterThanOrEqual(sendAt.getTime());

    // Ten to a message, every recipient once, as at acceptance; the job runs as any other.
    const ours = enqueued.filter((message) => message.job_id === job.job_id);
    expect(ours).toHaveLength(2);
    expect(ours.flatMap(recipientsOf).sort()).toEqual([...emails].sort());
    const started = await jobs.get(job.job_id);
    expect(started).toMatchObject({ status: 'queued', active: expect.any(String), remaining: 12 });
    expect(started).not.toHaveProperty('scheduled');
    expect(
      (await jobs.scheduledBefore(new Date(sendAt.getTime() + 3_600_000))).map((found) => found.job_id),
    ).not.toContain(job.job_id);
  });

  it('ends a scheduled job cancelled at its cancel, nothing enqueued, its quota given back, and never starts it', async () => {
    const start = new Date(Date.UTC(2031, 0, 7, 9, 0, 0));
    const { time, enqueued, accept, starter, apiKeyId } = setUp(start);
    const emails = await register(3);
    const sendAt = new Date(start.getTime() + 10 * 60_000);
    const { job } = await accept(emails, sendAt, ['board@example.org']);
    // Three recipients, each with a cc copy: six counted.
    expect((await quota.used(apiKeyId, start)).used).toBe(6);

    const cancelled = await cancelJob(
      { jobs, contents, quota, now: time.now },
      { jobId: job.job_id, apiKeyId },
    );
    expect(cancelled).toMatchObject({ status: 'cancelled', cancelled: 3, sent: 0, remaining: 0 });
    expect(cancelled.completed_at).toEqual(expect.any(String));
    expect((await quota.used(apiKeyId, start)).used).toBe(0);
    expect(await publishableEventIds(`job-cancelled:${job.job_id}`)).toHaveLength(1);
    // Cancelling again answers the same, and gives nothing back twice.
    expect(
      (await cancelJob({ jobs, contents, quota, now: time.now }, { jobId: job.job_id, apiKeyId })).status,
    ).toBe('cancelled');
    expect((await quota.used(apiKeyId, start)).used).toBe(0);

    time.set(sendAt);
    expect((await starter()).started).not.toContain(job.job_id);
    expect(enqueued.filter((message) => message.job_id === job.job_id)).toEqual([]);
  });

  it('refuses a send_at under a minute ahead, in the past or over 30 days ahead with a 400 naming it, counting nothing', async () => {
    const start = new Date(Date.UTC(2031, 0, 8, 9, 0, 0));
    const { accept, apiKeyId } = setUp(start);
    const emails = await register(1);
    for (const sendAt of [
      new Date(start.getTime() + 59_000),
      new Date(start.getTime() - 1_000),
      new Date(start.getTime() + 30 * 24 * 3600_000 + 1_000),
    ]) {
      await expect(accept(emails, sendAt)).rejects.toMatchObject({
        status: 400,
        details: [{ field: 'send_at', message: expect.any(String) }],
      });
    }
    expect((await quota.used(apiKeyId, start)).used).toBe(0);
  });
});

describe('the starter, on DynamoDB Local', () => {
  it('leaves a job to the next run when too little of its own time is left to enqueue it', async () => {
    const start = new Date(Date.UTC(2031, 0, 9, 9, 0, 0));
    const { time, enqueued, accept } = setUp(start);
    const emails = await register(1);
    const sendAt = new Date(start.getTime() + 2 * 60_000);
    const { job } = await accept(emails, sendAt);
    time.set(new Date(sendAt.getTime() - 10_000));
    // Ten seconds to its time, and twenty-five left to the run: not enough to start and enqueue it.
    const short = await startScheduledJobs({
      jobs,
      contents,
      queue: { enqueue: async (messages) => void enqueued.push(...messages) },
      now: time.now,
      wait: time.wait,
      deadline: new Date(time.now().getTime() + 25_000),
    });
    expect(short.deferred).toContain(job.job_id);
    expect((await jobs.get(job.job_id))?.status).toBe('scheduled');
  });
});
