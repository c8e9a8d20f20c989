import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapConcurrently } from '../../lambdas/core/concurrency';
import { clearInbox, readInbox } from '../../local/ses';
import { apiClient, isRunning, type RuntimeProcess, startRuntimeProcess } from '../support/runtime-process';

/**
 * A short consumer timeout, so an outage longer than an invocation makes Lambda's timeout end the
 * consumers mid-batch and the recovery (leases of 15 s, a visibility timeout of 30 s) runs within
 * the test; two consumers, paced slowly enough that the outage lands mid-job.
 */
const CONSUMERS = 2;
const CONTEXT = {
  usagePlanRateLimit: 2000,
  usagePlanBurstLimit: 2000,
  consumerTimeoutSeconds: 5,
  consumerMaxConcurrency: CONSUMERS,
  sesMaxSendRate: 40,
};
/** Emails one consumer has under way at once (`SEND_CONCURRENCY` in process-emails.ts). */
const SENDS_UNDER_WAY = 4;
const RECIPIENTS = 300;

const stateDir = mkdtempSync(join(tmpdir(), 'mailer-outage-'));
let runtime: RuntimeProcess;
let api: ReturnType<typeof apiClient>;
const registered = Array.from(
  { length: RECIPIENTS },
  (_, n) => `member${String(n).padStart(3, '0')}@outage-e2e.example.org`,
);

beforeAll(async () => {
  runtime = await startRuntimeProcess({ stateDir, context: CONTEXT });
  api = apiClient(runtime.url, runtime.apiKey);
  await mapConcurrently(registered, 16, async (email, n) => {
    const { status } = await api('POST', '/nonprofits', {
      email,
      name: `Member ${n}`,
      address: `${n} Main St`,
    });
    expect(status).toBe(201);
  });
});

afterAll(async () => {
  await runtime?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

/** Submits a job to every registered nonprofit and waits until some of it is sent. */
async function jobUnderWay() {
  await clearInbox(runtime.inboxUrl);
  const accepted = await api('POST', '/send-email', { emails: registered, template: 'Hello {name}' });
  expect(accepted.status).toBe(202);
  const jobId = String(accepted.body.job_id);
  for (let polls = 0; polls < 300; polls++) {
    const { body } = await api('GET', `/jobs/${jobId}/status`);
    if (Number(body.sent) > 0) return { jobId, sentBefore: Number(body.sent) };
    await sleep(50);
  }
  throw new Error('The job did not start');
}

/**
 * The job ends with exact counts (lost 0, double-counted 0), every recipient has its email, and
 * only emails that were under way when DynamoDB went away can have gone twice: SES took them and
 * their message ids could not be written (the window the README names). Each consumer stops
 * sending at the first id it cannot write, so at most the sends under way in each consumer.
 */
async function expectExactEnd(jobId: string) {
  const deadline = Date.now() + 150_000;
  let job: Record<string, unknown> = {};
  while (Date.now() < deadline) {
    // Answers 503 while DynamoDB Local is away; the job's counts are what matter.
    const { status, body } = await api('GET', `/jobs/${jobId}/status`);
    job = body;
    if (status === 200 && body.status === 'completed') break;
    await sleep(500);
  }
  expect(job).toMatchObject({ status: 'completed', total_emails: RECIPIENTS, sent: RECIPIENTS, failed: 0 });
  const pending = await api('GET', `/jobs/${jobId}/emails?status=pending&limit=100`);
  expect(pending.body.emails).toEqual([]);

  const received = new Map<string, number>();
  for (const email of await readInbox(runtime.inboxUrl))
    for (const to of email.destination.to) received.set(to, (received.get(to) ?? 0) + 1);
  expect(registered.filter((email) => !received.has(email))).toEqual([]);
  const twice = [...received.values()].filter((count) => count > 1).length;
  expect(twice).toBeLessThanOrEqual(CONSUMERS * SENDS_UNDER_WAY);
  return twice;
}

describe('a job while DynamoDB Local is away', () => {
  it('completes with exact counts when DynamoDB Local freezes past the consumer timeout mid-job', async () => {
    const { jobId } = await jobUnderWay();
    const java = runtime.javaPid();
    process.kill(java, 'SIGSTOP');
    try {
      // Longer than an invocation: consumers hang on DynamoDB until Lambda's timeout ends them.
      await sleep(8_000);
    } finally {
      process.kill(java, 'SIGCONT');
    }
    const twice = await expectExactEnd(jobId);
    console.log(
      `frozen 8 s mid-job: ${twice} recipients mailed twice (bound ${CONSUMERS * SENDS_UNDER_WAY})`,
    );
  }, 240_000);

  it('completes with exact counts when DynamoDB Local crashes mid-job and the runtime starts it again', async () => {
    const { jobId } = await jobUnderWay();
    const java = runtime.javaPid();
    process.kill(java, 'SIGKILL');
    for (
      let attempt = 0;
      attempt < 60 && (runtime.javaPid() === java || !isRunning(runtime.javaPid()));
      attempt++
    )
      await sleep(500);
    expect(runtime.javaPid()).not.toBe(java);
    const twice = await expectExactEnd(jobId);
    console.log(`crashed mid-job: ${twice} recipients mailed twice (bound ${CONSUMERS * SENDS_UNDER_WAY})`);
  }, 240_000);
});
