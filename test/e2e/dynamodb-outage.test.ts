import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEND_CONCURRENCY } from '../../lambdas/core/jobs/consumer/send-step';
import { clearInbox, readInbox } from '../../local/ses';
import { OUTAGE_CONTEXT } from '../support/e2e-contexts';
import { apiClient, isRunning, type RuntimeProcess, startRuntimeProcess } from '../support/runtime-process';
import { registerNonprofits } from '../support/seed';

const CONTEXT = OUTAGE_CONTEXT;
const CONSUMERS = CONTEXT.consumerMaxConcurrency;
/** Emails one consumer has under way at once. */
const SENDS_UNDER_WAY = SEND_CONCURRENCY;
const RECIPIENTS = 200;

const stateDir = mkdtempSync(join(tmpdir(), 'mailer-outage-'));
let runtime: RuntimeProcess;
let api: ReturnType<typeof apiClient>;
/** Each test mails its own recipients, so a straggler of one never counts in the other's inbox. */
const recipientsOf = (test: string) =>
  Array.from(
    { length: RECIPIENTS },
    (_, n) => `member${String(n).padStart(3, '0')}@${test}.outage.example.org`,
  );
const registered = { frozen: recipientsOf('frozen'), crashed: recipientsOf('crashed') };

beforeAll(async () => {
  runtime = await startRuntimeProcess({ stateDir, context: CONTEXT });
  // DynamoDB Local goes away on purpose: answers 503 meanwhile, as the contract allows.
  api = apiClient(runtime.url, runtime.apiKey, { serverErrorsExpected: true });
  await registerNonprofits(api, [...registered.frozen, ...registered.crashed]);
});

afterAll(async () => {
  await runtime?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

/** Submits a job to these nonprofits and waits until some of it is sent. */
async function jobUnderWay(recipients: string[]) {
  await clearInbox(runtime.inboxUrl);
  const accepted = await api('POST', '/send-email', { emails: recipients, template: 'Hello {name}' });
  expect(accepted.status).toBe(202);
  const jobId = String(accepted.body.job_id);
  for (let polls = 0; polls < 300; polls++) {
    const { body } = await api('GET', `/jobs/${jobId}/status`);
    if (Number(body.sent) > 0) return jobId;
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
async function expectExactEnd(jobId: string, recipients: string[]) {
  // Generous: on a loaded machine DynamoDB Local takes long to start again, and the job resumes after.
  // A crash can also lose an outcome's stream record: the sweeper (every minute) then counts the job
  // from its ledger once its counting has been still for `ledgerCountAfterSeconds`.
  const deadline = Date.now() + 300_000;
  let job: Record<string, unknown> = {};
  while (Date.now() < deadline) {
    // Answers 503 while DynamoDB Local is away; the job's counts are what matter.
    const { status, body } = await api('GET', `/jobs/${jobId}/status`);
    job = body;
    if (status === 200 && body.status === 'completed') break;
    await sleep(500);
  }
  if (job.status !== 'completed') {
    // What the runtime said about it helps more than the counts: which function, which error.
    const pendingNow = await api('GET', `/jobs/${jobId}/emails?status=pending&limit=100`);
    console.log(
      `Job ${jobId} did not complete: ${JSON.stringify(job)}\npending: ${JSON.stringify(pendingNow.body.emails)}\n` +
        runtime.output
          .filter((line) => /WARN|ERROR|Sweep|dead|retry|defer/i.test(line))
          .slice(-150)
          .join('\n'),
    );
  }
  expect(job).toMatchObject({ status: 'completed', total_emails: RECIPIENTS, sent: RECIPIENTS, failed: 0 });
  const pending = await api('GET', `/jobs/${jobId}/emails?status=pending&limit=100`);
  expect(pending.body.emails).toEqual([]);

  const received = new Map<string, number>();
  for (const email of await readInbox(runtime.inboxUrl))
    for (const to of email.destination.to) received.set(to, (received.get(to) ?? 0) + 1);
  expect(recipients.filter((email) => !received.has(email))).toEqual([]);
  // Extra emails, not recipients: one mailed three times counts twice.
  const extra = [...received.values()].reduce((total, count) => total + count - 1, 0);
  expect(extra).toBeLessThanOrEqual(CONSUMERS * SENDS_UNDER_WAY);
  return extra;
}

describe('a job while DynamoDB Local is away', () => {
  it('completes with exact counts when DynamoDB Local freezes past the consumer timeout mid-job', async () => {
    const jobId = await jobUnderWay(registered.frozen);
    const java = runtime.javaPid();
    process.kill(java, 'SIGSTOP');
    try {
      // Longer than an invocation: consumers hang on DynamoDB until Lambda's timeout ends them.
      await sleep(8_000);
    } finally {
      process.kill(java, 'SIGCONT');
    }
    const extra = await expectExactEnd(jobId, registered.frozen);
    console.log(`frozen 8 s mid-job: ${extra} extra emails (bound ${CONSUMERS * SENDS_UNDER_WAY})`);
  }, 600_000);

  it('completes with exact counts when DynamoDB Local crashes mid-job and the runtime starts it again', async () => {
    const jobId = await jobUnderWay(registered.crashed);
    const java = runtime.javaPid();
    process.kill(java, 'SIGKILL');
    for (
      let attempt = 0;
      attempt < 120 && (runtime.javaPid() === java || !isRunning(runtime.javaPid()));
      attempt++
    )
      await sleep(500);
    expect(runtime.javaPid()).not.toBe(java);
    const extra = await expectExactEnd(jobId, registered.crashed);
    console.log(`crashed mid-job: ${extra} extra emails (bound ${CONSUMERS * SENDS_UNDER_WAY})`);
  }, 600_000);
});
