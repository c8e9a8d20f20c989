import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateEmailIdentityCommand } from '@aws-sdk/client-sesv2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEND_CONCURRENCY } from '../../lambdas/core/jobs/consumer/send-step';
import { readInbox, sesClient } from '../../local/ses';
import { JOB_CONTROL_CONTEXT } from '../support/e2e-contexts';
import { toldEvents } from '../support/events';
import { apiClient, type RuntimeProcess, startRuntimeProcess, waitFor } from '../support/runtime-process';
import { registerNonprofits } from '../support/seed';

const CONTEXT = JOB_CONTROL_CONTEXT;
const CONSUMERS = CONTEXT.consumerMaxConcurrency;
/** Emails one consumer has under way at once. */
const SENDS_UNDER_WAY = SEND_CONCURRENCY;
/** Verified as a whole domain at the start; the retry test's addresses are elsewhere. */
const VERIFIED_DOMAIN = 'verified.control-e2e.example.org';

const stateDir = mkdtempSync(join(tmpdir(), 'mailer-control-'));
let runtime: RuntimeProcess;
let api: ReturnType<typeof apiClient>;

const register = (emails: string[]) => registerNonprofits(api, emails);
const verify = (identity: string) =>
  sesClient(runtime.sesEndpoint).send(new CreateEmailIdentityCommand({ EmailIdentity: identity }));
const mailedTo = async (recipients: readonly string[]) => {
  const wanted = new Set(recipients);
  return (await readInbox(runtime.inboxUrl)).filter((email) =>
    email.destination.to.some((to) => wanted.has(to)),
  );
};
const status = async (jobId: string) => (await api('GET', `/jobs/${jobId}/status`)).body;
/** A job to one new nonprofit, once it has completed. */
async function completedJobTo(recipient: string): Promise<string> {
  await register([recipient]);
  const accepted = await api('POST', '/send-email', { emails: [recipient], template: 'Hi {name}' });
  const jobId = String(accepted.body.job_id);
  await waitFor(
    () => status(jobId),
    (job) => job.status === 'completed',
  );
  return jobId;
}
const recipientsUsed = async () =>
  Number(((await api('GET', '/usage')).body.recipients as { used: number }).used);

beforeAll(async () => {
  runtime = await startRuntimeProcess({ stateDir, context: CONTEXT });
  api = apiClient(runtime.url, runtime.apiKey);
  await verify(VERIFIED_DOMAIN);
});

afterAll(async () => {
  await runtime?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

/**
 * A job scheduled 70 s ahead by the file's first test; its last test sees it start. The wait is real
 * time (the API takes `send_at` at least a minute ahead, and keeping that time is what is tested),
 * so it runs beside the tests between rather than in a test of its own.
 */
let scheduled: { jobId: string; sendAt: Date; recipients: string[]; started: Promise<number> } | undefined;

describe('scheduled sends (send_at)', () => {
  it('accepts a job 70 s ahead as scheduled, told with its time, and sends nothing before it', async () => {
    const recipients = [`later0@${VERIFIED_DOMAIN}`, `later1@${VERIFIED_DOMAIN}`];
    await register(recipients);
    const sendAt = new Date(Date.now() + 70_000);
    const accepted = await api('POST', '/send-email', {
      emails: recipients,
      template: 'Hi {name}',
      send_at: sendAt.toISOString(),
    });
    expect(accepted.status).toBe(202);
    expect(accepted.body).toMatchObject({ status: 'scheduled', send_at: sendAt.toISOString() });
    const jobId = String(accepted.body.job_id);
    expect((await api('GET', `/jobs/${jobId}`)).body).toMatchObject({
      status: 'scheduled',
      send_at: sendAt.toISOString(),
      sent: 0,
    });
    const listed = await api('GET', '/jobs?status=scheduled');
    expect((listed.body.jobs as { job_id: string }[]).map((job) => job.job_id)).toContain(jobId);
    expect(await toldEvents(runtime.eventsUrl, 'Job Accepted', { job_id: jobId })).toEqual([
      expect.objectContaining({
        detail: expect.objectContaining({ status: 'scheduled', send_at: sendAt.toISOString() }),
      }),
    ]);
    // When it leaves `scheduled`, as a client polling it sees (every 250 ms, beside the other tests).
    const started = waitFor(
      async () => ((await status(jobId)).status === 'scheduled' ? undefined : Date.now()),
      (at) => at !== undefined,
      150_000,
    ) as Promise<number>;
    started.catch(() => undefined);
    scheduled = { jobId, sendAt, recipients, started };
  });

  it('ends a scheduled job cancelled at its cancel: nothing sent, its quota given back, told once', async () => {
    const recipients = [`never0@${VERIFIED_DOMAIN}`, `never1@${VERIFIED_DOMAIN}`];
    await register(recipients);
    const before = await recipientsUsed();
    const accepted = await api('POST', '/send-email', {
      emails: recipients,
      template: 'Hi {name}',
      send_at: new Date(Date.now() + 10 * 60_000).toISOString(),
    });
    const jobId = String(accepted.body.job_id);
    expect(await recipientsUsed()).toBe(before + 2);

    const cancel = await api('POST', `/jobs/${jobId}/cancel`);
    expect(cancel.status).toBe(202);
    expect(cancel.body).toMatchObject({
      status: 'cancelled',
      cancelled: 2,
      sent: 0,
      message: 'The job is cancelled.',
    });
    expect(await recipientsUsed()).toBe(before);
    const emails = await api('GET', `/jobs/${jobId}/emails`);
    expect((emails.body.emails as { status: string }[]).map((email) => email.status)).toEqual([
      'cancelled',
      'cancelled',
    ]);
    const told = await toldEvents(runtime.eventsUrl, 'Job Cancelled', { job_id: jobId });
    expect(told).toHaveLength(1);
    expect(told[0]?.detail).toMatchObject({ cancelled: 2, sent: 0, total_emails: 2 });
    expect(await mailedTo(recipients)).toEqual([]);
  });
});

describe('POST /jobs/{job_id}/cancel', () => {
  it('stops a job mid-way: no email starts more than a second after the cancel, and the rest are counted cancelled', async () => {
    const recipients = Array.from(
      { length: 60 },
      (_, n) => `cancel${String(n).padStart(2, '0')}@${VERIFIED_DOMAIN}`,
    );
    await register(recipients);
    const usedBefore = await recipientsUsed();
    const accepted = await api('POST', '/send-email', { emails: recipients, template: 'Hello {name}' });
    expect(accepted.status).toBe(202);
    const jobId = String(accepted.body.job_id);
    await waitFor(
      () => mailedTo(recipients),
      (mailed) => mailed.length >= 4,
    );

    const cancel = await api('POST', `/jobs/${jobId}/cancel`);
    expect(cancel.status).toBe(202);
    expect(cancel.headers.get('location')).toBe(`/jobs/${jobId}`);
    expect(cancel.body).toMatchObject({
      job_id: jobId,
      status: 'cancelling',
      cancel_requested_at: expect.any(String),
    });

    const ended = await waitFor(
      () => status(jobId),
      (job) => job.status === 'cancelled',
      120_000,
    );
    const mailed = await mailedTo(recipients);
    // The ledger and the inbox agree, and only emails already on their way to SES when the cancel
    // was recorded reached it after: each consumer's sends under way at most.
    expect(ended.sent).toBe(mailed.length);
    const sent = await api('GET', `/jobs/${jobId}/emails?status=sent&limit=100`);
    const sentAt = (sent.body.emails as { sent_at: string }[]).map((email) => email.sent_at);
    expect(sentAt).toHaveLength(mailed.length);
    // A consumer starts an email on a look at the job at most a second old (CANCEL_LOOK_MAX_AGE_MS).
    const lastLookBy = new Date(Date.parse(String(cancel.body.cancel_requested_at)) + 1_000).toISOString();
    expect(sentAt.filter((at) => at > lastLookBy).length).toBeLessThanOrEqual(CONSUMERS * SENDS_UNDER_WAY);
    expect(Number(ended.cancelled)).toBeGreaterThan(0);
    expect(Number(ended.sent) + Number(ended.cancelled) + Number(ended.failed)).toBe(recipients.length);
    expect(ended.completed_at).toEqual(expect.any(String));
    // The recipient quota gets back what the cancel kept from being sent (just after the last outcome).
    await waitFor(recipientsUsed, (used) => used === usedBefore + Number(ended.sent) + Number(ended.failed));

    const listed = await api('GET', `/jobs/${jobId}/emails?status=cancelled&limit=100`);
    expect(listed.status).toBe(200);
    expect(listed.body.emails).toHaveLength(Number(ended.cancelled));

    // Cancelling again answers the same; nothing changes.
    const again = await api('POST', `/jobs/${jobId}/cancel`);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ status: 'cancelled', cancelled: ended.cancelled, sent: ended.sent });
    // Told on the bus once, with the counts it ended with.
    const told = await toldEvents(runtime.eventsUrl, 'Job Cancelled', { job_id: jobId });
    expect(told).toHaveLength(1);
    expect(told[0]?.detail).toMatchObject({
      status: 'cancelled',
      total_emails: recipients.length,
      sent: ended.sent,
      cancelled: ended.cancelled,
      failed: ended.failed,
    });
  });

  it('refuses to cancel a completed job, naming its status, and answers an unknown job 404', async () => {
    const recipient = `done@${VERIFIED_DOMAIN}`;
    const jobId = await completedJobTo(recipient);

    const refused = await api('POST', `/jobs/${jobId}/cancel`);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining('is completed'),
    });
    expect((await status(jobId)).status).toBe('completed');

    const unknown = await api('POST', '/jobs/00000000-0000-4000-8000-000000000000/cancel');
    expect(unknown.status).toBe(404);
    const malformed = await api('POST', '/jobs/not-a-job/cancel');
    expect(malformed.status).toBe(400);
  });
});

describe('POST /jobs/{job_id}/retry', () => {
  it('sends again only the failures that may pass, and moves the counts exactly', async () => {
    const domain = 'sandboxed.control-e2e.example.org';
    const [verifiedLater, stillUnverified, deleted] = ['later', 'never', 'deleted'].map(
      (name) => `${name}@${domain}`,
    );
    const sent = `ok@${VERIFIED_DOMAIN}`;
    const recipients = [sent, verifiedLater, stillUnverified, deleted] as string[];
    await register(recipients);
    const accepted = await api('POST', '/send-email', { emails: recipients, template: 'Hello {name}' });
    const jobId = String(accepted.body.job_id);
    const first = await waitFor(
      () => status(jobId),
      (job) => job.status === 'completed',
    );
    // SES refused the three unverified addresses.
    expect(first).toMatchObject({ sent: 1, failed: 3 });
    const failures = await api('GET', `/jobs/${jobId}/emails?status=failed`);
    expect((failures.body.emails as { error: string }[]).map(({ error }) => error)).toEqual(
      Array(3).fill(expect.stringContaining('Email address is not verified')),
    );

    await verify(verifiedLater as string);
    // A nonprofit deleted since: its retry fails again, as a nonprofit deleted, never retried after.
    expect((await api('DELETE', `/nonprofits/${encodeURIComponent(deleted as string)}`)).status).toBe(204);
    const key = { 'idempotency-key': `retry-${jobId}` };
    const retried = await api('POST', `/jobs/${jobId}/retry`, undefined, key);
    expect(retried.status).toBe(202);
    expect(retried.headers.get('location')).toBe(`/jobs/${jobId}`);
    expect(retried.body).toMatchObject({ status: 'processing', retrying: 3, failed: 0 });

    const second = await waitFor(
      () => status(jobId),
      (job) => job.status === 'completed',
    );
    expect(second).toMatchObject({ sent: 2, failed: 2, retried: 3, total_emails: 4 });
    expect((await mailedTo([verifiedLater as string])).length).toBe(1);

    // The same key again: the same job, nothing enqueued again.
    const replay = await api('POST', `/jobs/${jobId}/retry`, undefined, key);
    expect(replay.status).toBe(202);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect((await status(jobId)).retried).toBe(3);

    // Only the still-unverified address may pass now; the deleted nonprofit is left alone.
    const third = await api('POST', `/jobs/${jobId}/retry`);
    expect(third.status).toBe(202);
    expect(third.body).toMatchObject({ retrying: 1, not_retried: { nonprofit_deleted: 1 } });
    const ended = await waitFor(
      () => status(jobId),
      (job) => job.status === 'completed',
    );
    expect(ended).toMatchObject({ sent: 2, failed: 2, retried: 4 });
    expect((await mailedTo(recipients)).length).toBe(2);
  });

  it('answers 409 when nothing may be retried, and 400 for a malformed Idempotency-Key', async () => {
    const recipient = `fine@${VERIFIED_DOMAIN}`;
    const jobId = await completedJobTo(recipient);
    const refused = await api('POST', `/jobs/${jobId}/retry`);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({
      code: 'CONFLICT',
      message: `Job ${jobId} has no failures to retry.`,
    });
    const badKey = await api('POST', `/jobs/${jobId}/retry`, undefined, { 'idempotency-key': 'has space' });
    expect(badKey.status).toBe(400);
  });
});

describe('the recipient quota (recipientQuotaPerDay)', () => {
  it('refuses a job past what remains today with 429 QUOTA_EXCEEDED and Retry-After, then takes one that fits', async () => {
    const recipients = Array.from(
      { length: 100 },
      (_, n) => `quota${String(n).padStart(2, '0')}@${VERIFIED_DOMAIN}`,
    );
    await register(recipients);
    const today = new Date().toISOString().slice(0, 10);
    const usage = await api('GET', '/usage');
    expect(usage.status).toBe(200);
    // Around midnight UTC the answer may be of the next day.
    expect([today, new Date().toISOString().slice(0, 10)]).toContain(usage.body.day);
    const { used, limit, remaining } = usage.body.recipients as {
      used: number;
      limit: number;
      remaining: number;
    };
    expect(limit).toBe(100);
    expect(remaining).toBe(limit - used);
    expect(usage.body).toMatchObject({
      resets_at: expect.stringMatching(/T00:00:00\.000Z$/),
      requests: { rate_limit_per_second: 2000, burst_limit: 2000, quota_per_day: 100_000 },
    });
    // What the tests before sent, less what the cancel gave back.
    expect(remaining).toBeGreaterThan(2);

    // Each recipient and its cc copy: twice the recipients count.
    const half = Math.floor(remaining / 2);
    const over = await api('POST', '/send-email', {
      emails: recipients.slice(0, half + 1),
      template: 'Hi {name}',
      cc: [`copies@${VERIFIED_DOMAIN}`],
    });
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({
      code: 'QUOTA_EXCEEDED',
      limit: 100,
      remaining,
      requested: (half + 1) * 2,
    });
    const retryAfter = Number(over.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
    expect(await recipientsUsed()).toBe(used);

    const fits = await api('POST', '/send-email', {
      emails: recipients.slice(0, remaining),
      template: 'Hi {name}',
    });
    expect(fits.status).toBe(202);
    expect((await api('GET', '/usage')).body.recipients).toEqual({ used: limit, limit, remaining: 0 });
  });
});

describe('scheduled sends, at their time', () => {
  it('starts the job scheduled at the start of the file within 15 s of its time, and completes it', async () => {
    if (!scheduled) throw new Error('The job was not scheduled: the first test of this file failed');
    const { jobId, sendAt, recipients, started } = scheduled;
    const startedAt = await started;
    expect(startedAt).toBeGreaterThanOrEqual(sendAt.getTime());
    expect(startedAt - sendAt.getTime()).toBeLessThan(15_000);
    const done = await waitFor(
      () => status(jobId),
      (job) => job.status === 'completed',
      120_000,
    );
    expect(done).toMatchObject({ total_emails: 2, sent: 2, failed: 0 });
    const sentAt = ((await api('GET', `/jobs/${jobId}/emails`)).body.emails as { sent_at: string }[]).map(
      (email) => Date.parse(email.sent_at),
    );
    // Nothing before its time (the starter waits within its run for what falls due before the next).
    expect(Math.min(...sentAt)).toBeGreaterThanOrEqual(sendAt.getTime());
    expect(await mailedTo(recipients)).toHaveLength(2);
  });
});
