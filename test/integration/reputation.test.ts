import { randomUUID } from 'node:crypto';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { DynamoJobStore } from '../../lambdas/core/jobs/dynamodb/dynamo-job-store';
import { DynamoOutcomeCounts } from '../../lambdas/core/jobs/dynamodb/dynamo-outcome-counts';
import { acceptedJob } from '../../lambdas/core/jobs/job-status';
import { countOutcomes, type DeliveryChange } from '../../lambdas/core/jobs/outcome-counts';
import {
  DynamoGuardStore,
  DynamoReputationWindow,
} from '../../lambdas/core/sending/dynamodb/dynamo-reputation';
import { reputationHour } from '../../lambdas/core/sending/reputation';
import { localDocumentClient, tableNamed } from '../support/local-tables';

const { client, destroy } = localDocumentClient();
afterAll(destroy);
const jobsTable = tableNamed('DataJobs');
const jobs = new DynamoJobStore({ client, tableName: jobsTable });
const window = new DynamoReputationWindow({ client, jobsTable, consistent: true });
const store = new DynamoGuardStore({ client, jobsTable });
const deps = { counts: new DynamoOutcomeCounts({ client, jobsTable }), jobs, log: () => undefined };

const sentNow = async () => (await window.counts([reputationHour(new Date())])).sent;

describe('the reputation window and the guard record, on DynamoDB Local', () => {
  it("counts a stream batch's sent emails in the window once, however often it is handed over", async () => {
    const jobId = randomUUID();
    const at = new Date().toISOString();
    await jobs.create(
      acceptedJob(
        { job_id: jobId, api_key_id: 'window-test', request_hash: 'x', created_at: at, enqueue_deadline: at },
        5,
      ),
    );
    const outcome = (n: number, after: 'sent' | 'failed'): DeliveryChange => ({
      eventId: `${jobId}-${n}`,
      jobId,
      before: 'sending',
      after,
      streamCounted: true,
    });
    const batch = [outcome(1, 'sent'), outcome(2, 'sent'), outcome(3, 'failed')];
    const before = await sentNow();
    await countOutcomes(deps, batch);
    await countOutcomes(deps, batch);
    // Sent, not failed: two, once. (Other tests may count in the same hour: at least, and exactly ours.)
    expect(await sentNow()).toBe(before + 2);
  });

  it('records a pause only if nothing changed since it was read, and a resume only of the pause it read', async () => {
    await client.send(new DeleteCommand({ TableName: jobsTable, Key: { job_id: 'sending#guard' } }));
    const window0 = { sent: 600, bounced: 0, complained: 1, bounce_rate: 0, complaint_rate: 0.0017 };
    const first = await store.get();
    expect(await store.pause({ paused_at: 'p1', reason: 'complaints', window: window0 }, first)).toBe(true);
    // A second run that read the record before the pause: refused.
    expect(await store.pause({ paused_at: 'p2', reason: 'again', window: window0 }, first)).toBe(false);
    const paused = await store.get();
    expect(paused).toMatchObject({ paused: true, switched: false, paused_at: 'p1' });
    await store.switched('p1');
    const baseline = { hour: '2026-12-04T08', sent: 600, bounced: 0, complained: 1 };
    const resume = { resumed_at: 'r1', resumed_by: 'key-1', resume_reason: 'looked into it', baseline };
    // A resume of another pause than the one recorded: refused.
    expect(await store.resume(resume, { paused: true, paused_at: 'p0' })).toBe(false);
    expect(await store.resume(resume, paused)).toBe(true);
    // A run that read the record before that resume does not pause on what it let go.
    expect(await store.pause({ paused_at: 'p3', reason: 'stale', window: window0 }, paused)).toBe(false);
    expect(await store.get()).toMatchObject({ paused: false, switched: true, resumed_at: 'r1', baseline });
  });
});
