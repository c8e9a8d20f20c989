import { randomUUID } from 'node:crypto';
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { DynamoDeliveries } from '../../lambdas/core/jobs/dynamodb/dynamo-deliveries';
import { DynamoJobStore } from '../../lambdas/core/jobs/dynamodb/dynamo-job-store';
import { DynamoOutcomeCounts } from '../../lambdas/core/jobs/dynamodb/dynamo-outcome-counts';
import { acceptedJob } from '../../lambdas/core/jobs/job-status';
import { countOutcomes, type DeliveryChange } from '../../lambdas/core/jobs/outcome-counts';
import { DynamoGuardStore } from '../../lambdas/core/sending/dynamodb/dynamo-reputation';
import { DynamoSuppressionList } from '../../lambdas/core/suppressions/dynamodb/dynamo-suppression-list';
import { localDocumentClient, tableNamed } from '../support/local-tables';
import { publishableEventIds, testOutbox } from '../support/outbox';

/**
 * Each fact's event is written with the fact, in one transaction: these drive every writer that
 * tells one twice over (a redelivered message, a retried batch, a second click) and read the
 * outbox's stream for what the publisher would put on the bus. Exactly one each.
 */
const { client, destroy } = localDocumentClient();
afterAll(destroy);
const outbox = testOutbox();
const jobsTable = tableNamed('DataJobs');
const jobs = new DynamoJobStore({ client, tableName: jobsTable, outbox });
const counts = new DynamoOutcomeCounts({ client, jobsTable, outbox });

async function newJob(recipients: number) {
  const jobId = randomUUID();
  const at = new Date().toISOString();
  const job = acceptedJob(
    { job_id: jobId, api_key_id: 'events-test', request_hash: 'x', created_at: at, enqueue_deadline: at },
    recipients,
  );
  return { jobId, job, created: await jobs.create(job) };
}

const outcome = (jobId: string, n: number): DeliveryChange => ({
  eventId: `${jobId}-${n}`,
  jobId,
  before: 'sending',
  after: 'sent',
  streamCounted: true,
});

describe('events written with their facts, on DynamoDB Local', () => {
  it('tells a job accepted once, however often it is created', async () => {
    const { jobId, job, created } = await newJob(1);
    expect(created.created).toBe(true);
    expect((await jobs.create(job)).created).toBe(false);
    expect(await publishableEventIds(`job-accepted:${jobId}`)).toHaveLength(1);
  });

  it("tells a job's end once, from the part that ends it, however often that batch is handed over", async () => {
    const { jobId } = await newJob(2);
    const deps = { counts, jobs, log: () => undefined };
    await countOutcomes(deps, [outcome(jobId, 1)]);
    expect(await publishableEventIds(`job-completed:${jobId}`)).toEqual([]);
    const last = [outcome(jobId, 1), outcome(jobId, 2)];
    await countOutcomes(deps, last);
    await countOutcomes(deps, last);
    expect(await publishableEventIds(`job-completed:${jobId}`)).toHaveLength(1);
  });

  it('tells a job the sweeper ends from its ledger, once, as cancelled when a cancel was asked', async () => {
    const { jobId } = await newJob(2);
    expect(await jobs.requestCancel(jobId, new Date())).toBe(true);
    const read = await jobs.get(jobId);
    if (!read) throw new Error('job gone');
    const tally = { sent: 1, failed: 0, suppressed: 0, cancelled: 1 };
    expect(await jobs.countFromLedger(read, tally, new Date())).toBe(true);
    expect(await jobs.countFromLedger(read, tally, new Date())).toBe(false);
    expect(await publishableEventIds(`job-cancelled:${jobId}`)).toHaveLength(1);
  });

  it('tells each SES report noted on an email once, however often it arrives, and nothing of one that matches no email', async () => {
    const { jobId } = await newJob(1);
    await client.send(
      new PutCommand({
        TableName: tableNamed('DataDeliveries'),
        Item: { job_id: jobId, recipient: 'a@example.org', status: 'sent', message_id: 'ses-1' },
      }),
    );
    const deliveries = new DynamoDeliveries({
      client,
      jobsTable,
      deliveriesTable: tableNamed('DataDeliveries'),
      outbox,
    });
    const report = (feedbackId: string, messageId = 'ses-1') => ({
      kind: 'bounce' as const,
      feedbackId,
      messageId,
      detail: '550 5.1.1 user unknown',
      at: new Date().toISOString(),
    });
    const bounce = `bounce-${randomUUID()}`;
    expect(await deliveries.recordFeedback(jobId, 'a@example.org', report(bounce))).toBe('recorded');
    expect(await deliveries.recordFeedback(jobId, 'a@example.org', report(bounce))).toBe('duplicate');
    const other = `bounce-${randomUUID()}`;
    expect(await deliveries.recordFeedback(jobId, 'a@example.org', report(other, 'ses-other'))).toBe(
      'unmatched',
    );
    expect(await publishableEventIds(`email-bounced:${bounce}`)).toHaveLength(1);
    expect(await publishableEventIds(`email-bounced:${other}`)).toEqual([]);
  });

  it('tells an unsubscribe once: a second click, or a weaker reason after it, tells nothing', async () => {
    const list = new DynamoSuppressionList({ client, tableName: tableNamed('DataSuppressions'), outbox });
    const email = `${randomUUID().slice(0, 8)}@events.example.org`;
    expect((await list.add({ email, reason: 'unsubscribed', job_id: randomUUID() })).created).toBe(true);
    expect((await list.add({ email, reason: 'unsubscribed' })).created).toBe(false);
    expect((await list.add({ email, reason: 'bounced' })).created).toBe(false);
    expect(await publishableEventIds(`recipient-unsubscribed:${email}`)).toHaveLength(1);
    // A bounce suppresses without telling an unsubscribe.
    const bounced = `${randomUUID().slice(0, 8)}@events.example.org`;
    await list.add({ email: bounced, reason: 'bounced' });
    expect(await publishableEventIds(`recipient-unsubscribed:${bounced}`)).toEqual([]);
  });

  it('tells a pause once, when two runs of the guard record it at once, and the resume that lifts it', async () => {
    // The guard's record has a fixed key: start from none (as a new deployment), and leave none.
    const guardKey = { TableName: jobsTable, Key: { job_id: 'sending#guard' } };
    await client.send(new DeleteCommand(guardKey));
    onTestFinished(async () => {
      await client.send(new DeleteCommand(guardKey));
    });
    const store = new DynamoGuardStore({ client, jobsTable, outbox });
    const seen = await store.get();
    expect(seen).toBeUndefined();
    const pausedAt = new Date().toISOString();
    const window = { sent: 600, bounced: 20, complained: 0, bounce_rate: 0.033, complaint_rate: 0 };
    const results = await Promise.all([
      store.pause({ paused_at: pausedAt, reason: 'test pause', window }, seen),
      store.pause({ paused_at: pausedAt, reason: 'test pause', window }, seen),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await publishableEventIds(`sending-paused:${pausedAt}`)).toHaveLength(1);
    const paused = await store.get();
    const resumedAt = new Date().toISOString();
    const resume = {
      resumed_at: resumedAt,
      resumed_by: 'events-test',
      resume_reason: 'test over',
      baseline: { hour: 'x', sent: 0, bounced: 0, complained: 0 },
    };
    expect(await store.resume(resume, paused)).toBe(true);
    expect(await store.resume(resume, seen)).toBe(false);
    expect(await publishableEventIds(`sending-resumed:${resumedAt}`)).toHaveLength(1);
  });
});
