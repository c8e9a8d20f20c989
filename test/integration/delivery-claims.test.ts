import { randomUUID } from 'node:crypto';
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { chunks } from '../../lambdas/core/concurrency';
import {
  type Claim,
  type DeliveryOutcome,
  deliveryPartition,
  MAX_FEEDBACK_PER_DELIVERY,
} from '../../lambdas/core/jobs/deliveries';
import { DynamoDeliveries } from '../../lambdas/core/jobs/dynamodb/dynamo-deliveries';
import { claimOne, claimsContract, sent, tokenOf } from '../support/claims-contract';
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
const deliveriesTable = tableNamed('DataDeliveries');
const LEASE_MS = 30_000;

/**
 * Two consumers on one clock the test moves: the claims' leases are judged by it. With `shards`,
 * every job's deliveries are spread over that many partition keys.
 */
function consumers(shards = 1) {
  let now = Date.now();
  const clock = () => new Date(now);
  const consumer = () =>
    new DynamoDeliveries({
      client,
      jobsTable,
      deliveriesTable,
      leaseMs: LEASE_MS,
      now: clock,
      shardsOf: async () => shards,
    });
  return { one: consumer(), other: consumer(), clock, advance: (ms: number) => (now += ms) };
}

/** Waits until the stream's counter has ended the job (it counted its last outcome). */
const ended = (jobId: string) =>
  waitFor(
    async () =>
      (
        await client.send(
          new GetCommand({ TableName: jobsTable, Key: { job_id: jobId }, ConsistentRead: true }),
        )
      ).Item,
    (job) => job?.status === 'completed',
    10_000,
  );

async function newJob(recipients: number): Promise<string> {
  const jobId = randomUUID();
  const at = new Date().toISOString();
  await client.send(
    new PutCommand({
      TableName: jobsTable,
      Item: {
        job_id: jobId,
        api_key_id: 'claims-test',
        status: 'queued',
        total_emails: recipients,
        sent: 0,
        failed: 0,
        remaining: recipients,
        created_at: at,
        updated_at: at,
        request_hash: 'x',
      },
    }),
  );
  return jobId;
}

describe('the claims contract, on DynamoDB Local', () => {
  claimsContract(() => {
    const { one, other, advance } = consumers();
    return { one, other, advance, leaseMs: LEASE_MS, newJob };
  });
});

describe('the claims contract, on DynamoDB Local, with deliveries spread over three keys', () => {
  claimsContract(() => {
    const { one, other, advance } = consumers(3);
    return { one, other, advance, leaseMs: LEASE_MS, newJob };
  });
});

describe('a job spread over several partition keys, on DynamoDB Local', () => {
  it('writes each delivery under its shard, reads them all back, and the stream counts them on the job', async () => {
    const { one } = consumers(4);
    const jobId = await newJob(40);
    const recipients = Array.from({ length: 40 }, (_, n) => `shard${n}@example.org`);
    const outcomes: DeliveryOutcome[] = [];
    for (const [chunk, part] of chunks(recipients, 10).entries()) {
      const claim = await one.claimChunk(jobId, chunk, part);
      if (claim.state !== 'claimed') throw new Error('expected the chunk');
      outcomes.push(
        ...part.map((recipient, n) => ({
          ...sent(recipient, claim.token, `ses-${recipient}`),
          ...(n === 0 ? { status: 'failed' as const, reason: 'rejected' as const, messageId: null } : {}),
          chunk,
        })),
      );
    }
    expect((await one.record(jobId, outcomes)).recorded).toHaveLength(40);

    // Under four keys, each recipient where its hash puts it.
    const partitions = new Set<string>();
    for (const shard of [0, 1, 2, 3]) {
      const { Items = [] } = await client.send(
        new QueryCommand({
          TableName: deliveriesTable,
          KeyConditionExpression: 'job_id = :key',
          ExpressionAttributeValues: { ':key': `${jobId}#${shard}` },
        }),
      );
      for (const item of Items) {
        expect(deliveryPartition(jobId, String(item.recipient), 4)).toBe(`${jobId}#${shard}`);
        partitions.add(String(item.job_id));
      }
    }
    expect(partitions.size).toBe(4);
    expect(await one.processedRecipients(jobId)).toEqual(new Set(recipients));
    expect((await one.failures(jobId)).map(({ recipient, job_id }) => [recipient, job_id]).sort()).toEqual(
      [0, 10, 20, 30].map((n) => [`shard${n}@example.org`, jobId]).sort(),
    );
    expect((await one.getMany(jobId, ['shard5@example.org'])).get('shard5@example.org')).toMatchObject({
      job_id: jobId,
      status: 'sent',
    });
    expect(await ended(jobId)).toMatchObject({ sent: 36, failed: 4, remaining: 0 });
  });
});

describe('claims on recipients, on DynamoDB Local', () => {
  it('never gives out a claim whose email was handed over: the next holder records it sent, with its id', async () => {
    const { one, other, clock, advance } = consumers();
    const jobId = await newJob(2);
    const claim = await claimOne(one, jobId, 'b@example.org');
    await one.handOver(jobId, 'b@example.org', tokenOf(claim), 'ses-id-1');
    const handedOverAt = clock().toISOString();
    // A release after the hand-over gives nothing back: the email left.
    await one.release(jobId, 'b@example.org', tokenOf(claim));

    advance(LEASE_MS + 1);
    const next = await claimOne(other, jobId, 'b@example.org');
    expect(next).toMatchObject({ state: 'handedOver', messageId: 'ses-id-1' });
    expect(await other.record(jobId, [sent('b@example.org', tokenOf(next), 'ses-id-1')])).toMatchObject({
      recorded: [expect.objectContaining({ recipient: 'b@example.org' })],
    });
    // The hand-over's time stays the send time; the outcome was recorded a lease later.
    expect((await other.getMany(jobId, ['b@example.org'])).get('b@example.org')).toMatchObject({
      status: 'sent',
      message_id: 'ses-id-1',
      handed_over_at: handedOverAt,
      processed_at: clock().toISOString(),
    });
    expect(await other.processedRecipients(jobId)).toEqual(new Set(['b@example.org']));
  });

  it('frees a released claim at once, and counts no claim under way as an outcome', async () => {
    const { one, other } = consumers();
    const jobId = await newJob(2);
    const released = await claimOne(one, jobId, 'c@example.org');
    await one.release(jobId, 'c@example.org', tokenOf(released));
    await claimOne(one, jobId, 'd@example.org');

    expect((await claimOne(other, jobId, 'c@example.org')).state).toBe('claimed');
    // Both are claimed, neither has an outcome: the sweeper would enqueue both again if their messages were lost.
    expect(await other.processedRecipients(jobId)).toEqual(new Set());
  });

  it('claims a recipient once however often a batch names it, and records each recipient once', async () => {
    const { one } = consumers();
    const jobId = await newJob(3);
    const recipients = ['e@example.org', 'f@example.org', 'g@example.org'];
    const claims = await one.claim(
      jobId,
      [...recipients, 'e@example.org'].map((recipient) => ({ recipient, attempts: 1 })),
    );
    expect([...claims.values()].map((claim) => claim.state)).toEqual(['claimed', 'claimed', 'claimed']);
    const outcomes = recipients.map((recipient) => sent(recipient, tokenOf(claims.get(recipient) as Claim)));

    const result = await one.record(jobId, [...outcomes, outcomes[0] as DeliveryOutcome]);
    expect(result).toMatchObject({ duplicates: 1 });
    expect(result.recorded).toHaveLength(3);
    expect(await one.record(jobId, outcomes)).toMatchObject({ recorded: [], duplicates: 3 });
    // Counted once each: the job ends with exactly its three.
    expect(await ended(jobId)).toMatchObject({ sent: 3, remaining: 0 });
  });

  it("a retried failure keeps its copies' ids, sends the refused copy again, and drops the old copy errors", async () => {
    const { one } = consumers();
    const jobId = await newJob(1);
    const cc = ['board@example.org', 'boss@example.org'];
    const first = await claimOne(one, jobId, 'h@example.org');
    await one.handOver(jobId, 'h@example.org', tokenOf(first), 'ses-board', { copyTo: 'board@example.org' });
    await one.record(jobId, [
      {
        recipient: 'h@example.org',
        status: 'failed',
        reason: 'rejected',
        error: 'SES MessageRejected',
        cc,
        attempts: 1,
        claimToken: tokenOf(first),
        copyErrors: { 'boss@example.org': 'SES MessageRejected: blocked' },
      },
    ]);
    await ended(jobId);
    const retry = {
      recipients: ['h@example.org'],
      token: randomUUID(),
      deadline: new Date(Date.now() + 60_000),
    };
    expect(await one.requeueFailures(jobId, retry)).toEqual({
      state: 'requeued',
      recipients: ['h@example.org'],
    });

    const again = await claimOne(one, jobId, 'h@example.org');
    expect(again).toMatchObject({ state: 'claimed', copies: { 'board@example.org': 'ses-board' } });
    await one.handOver(jobId, 'h@example.org', tokenOf(again), 'ses-boss', { copyTo: 'boss@example.org' });
    await one.record(jobId, [{ ...sent('h@example.org', tokenOf(again), 'ses-own'), cc }]);

    const { Item } = await client.send(
      new GetCommand({ TableName: deliveriesTable, Key: { job_id: jobId, recipient: 'h@example.org' } }),
    );
    expect(Item).toMatchObject({
      status: 'sent',
      message_id: 'ses-own',
      copy_ids: { 'board@example.org': 'ses-board', 'boss@example.org': 'ses-boss' },
    });
    expect(Item).not.toHaveProperty('copy_errors');
  });
});

describe("SES's reports on sent emails, on DynamoDB Local", () => {
  const report = (feedbackId: string, messageId = 'ses-1') => ({
    kind: 'bounce' as const,
    feedbackId,
    messageId,
    detail: 'Permanent/General: smtp; 550 5.1.1 user unknown',
    at: '2026-11-28T10:00:00.000Z',
  });

  async function sentJob() {
    const { one } = consumers();
    const jobId = await newJob(1);
    const claim = await claimOne(one, jobId, 'a@example.org');
    await one.handOver(jobId, 'a@example.org', tokenOf(claim), 'ses-1');
    await one.record(jobId, [sent('a@example.org', tokenOf(claim), 'ses-1')]);
    await ended(jobId);
    return { deliveries: one, jobId };
  }

  it('notes a report once on the delivery SES names and counts it once on the job, however often it arrives', async () => {
    const { deliveries, jobId } = await sentJob();
    expect(await deliveries.recordFeedback(jobId, 'a@example.org', report('f-1'))).toBe('recorded');
    expect(await deliveries.recordFeedback(jobId, 'a@example.org', report('f-1'))).toBe('duplicate');
    // A second, different report on the same email counts too.
    expect(
      await deliveries.recordFeedback(jobId, 'a@example.org', { ...report('f-2'), kind: 'complaint' }),
    ).toBe('recorded');

    const delivery = (await deliveries.getMany(jobId, ['a@example.org'])).get('a@example.org');
    expect(delivery?.status).toBe('sent');
    expect(delivery?.feedback).toEqual([
      {
        type: 'bounce',
        at: '2026-11-28T10:00:00.000Z',
        detail: 'Permanent/General: smtp; 550 5.1.1 user unknown',
      },
      {
        type: 'complaint',
        at: '2026-11-28T10:00:00.000Z',
        detail: 'Permanent/General: smtp; 550 5.1.1 user unknown',
      },
    ]);
    const { Item: job } = await client.send(new GetCommand({ TableName: jobsTable, Key: { job_id: jobId } }));
    expect(job).toMatchObject({ status: 'completed', sent: 1, bounced: 1, complained: 1, remaining: 0 });
    expect(job).not.toHaveProperty('transient_bounces');
  });

  it('matches nothing for another email (a cc copy, another message id) or a job that is gone, and changes nothing', async () => {
    const { deliveries, jobId } = await sentJob();
    expect(await deliveries.recordFeedback(jobId, 'a@example.org', report('f-3', 'ses-other'))).toBe(
      'unmatched',
    );
    expect(await deliveries.recordFeedback(jobId, 'cc@example.org', report('f-4'))).toBe('unmatched');
    expect(await deliveries.recordFeedback(randomUUID(), 'a@example.org', report('f-5'))).toBe('unmatched');
    const { Item: job } = await client.send(new GetCommand({ TableName: jobsTable, Key: { job_id: jobId } }));
    expect(job).not.toHaveProperty('bounced');
    expect((await deliveries.getMany(jobId, ['a@example.org'])).get('a@example.org')).not.toHaveProperty(
      'feedback',
    );
  });

  it('answers pending for a claimed recipient whose message id is not written yet, then records once it is', async () => {
    const { one } = consumers();
    const jobId = await newJob(1);
    const claim = await claimOne(one, jobId, 'a@example.org');
    expect(await one.recordFeedback(jobId, 'a@example.org', report('f-6'))).toBe('pending');
    await one.handOver(jobId, 'a@example.org', tokenOf(claim), 'ses-1');
    expect(await one.recordFeedback(jobId, 'a@example.org', report('f-6'))).toBe('recorded');
  });

  it('notes a not-spam report without counting it, and keeps at most MAX_FEEDBACK_PER_DELIVERY reports on a delivery', async () => {
    const { deliveries, jobId } = await sentJob();
    expect(
      await deliveries.recordFeedback(jobId, 'a@example.org', { ...report('n-1'), kind: 'not_spam' }),
    ).toBe('recorded');
    for (let n = 2; n <= MAX_FEEDBACK_PER_DELIVERY; n++) {
      await deliveries.recordFeedback(jobId, 'a@example.org', {
        ...report(`n-${n}`),
        kind: 'transient_bounce',
      });
    }
    expect(await deliveries.recordFeedback(jobId, 'a@example.org', report('one-too-many'))).toBe('unmatched');
    const delivery = (await deliveries.getMany(jobId, ['a@example.org'])).get('a@example.org');
    expect(delivery?.feedback).toHaveLength(MAX_FEEDBACK_PER_DELIVERY);
    const { Item: job } = await client.send(new GetCommand({ TableName: jobsTable, Key: { job_id: jobId } }));
    expect(job).toMatchObject({ transient_bounces: MAX_FEEDBACK_PER_DELIVERY - 1 });
    expect(job).not.toHaveProperty('complained');
    expect(job).not.toHaveProperty('bounced');
  });
});
