// The email pipeline, continued (email-pipeline.test.ts): suppressed addresses, and each recipient
// mailed at most once through the local SES. Apart, so the two files run at once.
import { randomUUID } from 'node:crypto';
import type { Context, SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { verifyUnsubscribeToken } from '../../lambdas/core/suppressions/unsubscribe-token';
import { SendPacer } from '../../lambdas/core/transport/send-pacer';
import { DeliveryError, type EmailTransport } from '../../lambdas/core/transport/transport';
import { PIPELINE_FROM, PIPELINE_LINK_SECRET } from '../support/pipeline';
import {
  expectExactlyOnce,
  expectMailedOnce,
  passThrough,
  recordingWith,
  type SqsHandler,
  usePipelines,
} from '../support/pipeline-scenarios';

const run = usePipelines();

describe('suppressed addresses in the pipeline', () => {
  it('records suppressed recipients without mailing them, drops suppressed cc copies, and ends the job exactly', async () => {
    const p = await run();
    const recipients = await p.registerNonprofits(12);
    const suppressed = new Set([recipients[2], recipients[7]] as string[]);
    for (const email of suppressed) await p.suppressions.add({ email, reason: 'unsubscribed' });
    const cc = [
      `board@${randomUUID().slice(0, 8)}.example.org`,
      `gone@${randomUUID().slice(0, 8)}.example.org`,
    ];
    await p.suppressions.add({ email: cc[1] as string, reason: 'bounced' });
    const { job } = await p.submit(recipients, 'Hi {name}', 'key-1', { cc });

    const recorded = await expectExactlyOnce(p, job.job_id, recipients, {
      sent: 10,
      failed: 0,
      suppressed: 2,
    });
    for (const email of suppressed)
      expect(recorded.get(email)).toMatchObject({
        status: 'suppressed',
        error: 'The address is suppressed (unsubscribed).',
      });
    await expectMailedOnce(p, recipients, new Set(recipients.filter((email) => !suppressed.has(email))));
    // Each sent email shows the cc it was copied to; the suppressed cc address got no copy.
    const inbox = await p.inbox();
    const ours = inbox.filter((email) => recipients.includes(email.shown.to[0] as string));
    expect(ours).toHaveLength(20);
    expect(ours.every((email) => JSON.stringify(email.shown.cc) === JSON.stringify([cc[0]]))).toBe(true);
    expect(ours.filter((email) => email.destination.to[0] === cc[0])).toHaveLength(10);
    expect(inbox.filter((email) => email.destination.to.includes(cc[1] as string))).toEqual([]);
  }, 120_000);
});

describe('each recipient mailed at most once through the local SES, whatever SQS and the consumer do', () => {
  it('sends the documented email with its cc to each recipient, once', async () => {
    const p = await run();
    const recipients = await p.registerNonprofits(3);
    const { job } = await p.submit(recipients, 'Dear {name},\nyour address: {address}', 'key-1', {
      subject: 'News for {name}',
      cc: ['board@pipeline.example.org'],
    });

    await expectExactlyOnce(p, job.job_id, recipients, { sent: 3, failed: 0 });
    await expectMailedOnce(p, recipients);
    const inbox = await p.inbox();
    for (const [n, recipient] of recipients.entries()) {
      expect(inbox.find((email) => email.destination.to.includes(recipient))).toMatchObject({
        from: PIPELINE_FROM,
        subject: `News for Member ${n}`,
        body: {
          text: expect.stringMatching(new RegExp(`^Dear Member ${n},\nyour address: ${n} Main St\n\n-- \n`)),
        },
        destination: { to: [recipient], cc: [] },
        shown: { to: [recipient], cc: ['board@pipeline.example.org'] },
      });
    }
    // Each reader gets a message of their own, with a link that unsubscribes that reader only.
    const ours = inbox.filter((email) => recipients.includes(email.shown.to[0] as string));
    expect(ours).toHaveLength(6);
    for (const email of ours) {
      const link = /^<([^>]+)>$/.exec(
        email.headers.find((found) => found.name === 'List-Unsubscribe')?.value ?? '',
      )?.[1];
      const token = new URL(link ?? 'https://x').searchParams.get('token') ?? '';
      expect(verifyUnsubscribeToken({ current: PIPELINE_LINK_SECRET }, token)?.email).toBe(
        email.destination.to[0],
      );
      expect(email.body.text).toContain(`Unsubscribe: ${link}`);
    }
  });

  it('sends no second email when recording fails after SES took it', async () => {
    const failedOnce = new Set<string>();
    const recordFailsFirst = recordingWith((real) => async (jobId, outcomes) => {
      const fresh = outcomes.filter((outcome) => !failedOnce.has(outcome.recipient));
      if (fresh.length > 0) {
        for (const outcome of fresh) failedOnce.add(outcome.recipient);
        throw new Error('injected: DynamoDB failed the recording');
      }
      return real.record(jobId, outcomes);
    });
    const p = await run({ deliveries: recordFailsFirst });
    const recipients = await p.registerNonprofits(20);
    const { job } = await p.submit(recipients);

    const recorded = await expectExactlyOnce(p, job.job_id, recipients, { sent: 20, failed: 0 });
    // Each outcome was written by a second try at once, in the same attempt, with SES's message id.
    expect(failedOnce.size).toBe(20);
    expect([...recorded.values()].every((delivery) => delivery.message_id !== undefined)).toBe(true);
    await expectMailedOnce(p, recipients);
  }, 120_000);

  it('sends no second email when the consumer times out mid-batch', async () => {
    let sends = 0;
    let release: () => void = () => undefined;
    const hung = new Promise<never>((_, reject) => {
      release = () => reject(new Error('test over'));
    });
    hung.catch(() => undefined);
    // The fourth send of the run never returns, as a consumer whose time ran out in the middle of a batch.
    const hangs = (ses: EmailTransport): EmailTransport => ({
      name: 'hangs',
      send: async (email) => {
        if (++sends === 4) return hung;
        return ses.send(email);
      },
    });
    let timedOut = 0;
    // Lambda ends an invocation at its timeout: the event source sees a failure; the handler's work stops there.
    const timeout = (real: SqsHandler) => async (event: SQSEvent, context: Context) => {
      const invocation = real(event, context);
      invocation.catch(() => undefined);
      return Promise.race([
        invocation,
        new Promise<never>((_, reject) =>
          setTimeout(() => {
            timedOut++;
            reject(new Error('injected: Task timed out'));
          }, 1_500),
        ),
      ]);
    };
    try {
      const p = await run({ transport: hangs, consumer: timeout, concurrency: 1 });
      const recipients = await p.registerNonprofits(10);
      const { job } = await p.submit(recipients);

      await expectExactlyOnce(p, job.job_id, recipients, { sent: 10, failed: 0 });
      expect(timedOut).toBeGreaterThanOrEqual(1);
      await expectMailedOnce(p, recipients);
    } finally {
      release();
    }
  }, 120_000);

  it("holds the consumer to its share of SES's send rate, cc copies counted", async () => {
    const startedAt: number[] = [];
    const timed = (ses: EmailTransport): EmailTransport => ({
      name: 'timed',
      send: async (email) => {
        startedAt.push(performance.now());
        return ses.send(email);
      },
    });
    // 10 messages a second; each email has one cc, a message of its own.
    const p = await run({ transport: timed, pacer: new SendPacer(10), concurrency: 1 });
    const recipients = await p.registerNonprofits(12);
    const { job } = await p.submit(recipients, 'Hi {name}', 'key-1', { cc: ['board@pipeline.example.org'] });

    await expectExactlyOnce(p, job.job_id, recipients, { sent: 12, failed: 0 });
    await expectMailedOnce(p, recipients);
    // A lower bound only: a busy machine makes it slower, never faster.
    const spanSeconds = ((startedAt.at(-1) as number) - (startedAt[0] as number)) / 1000;
    expect(startedAt).toHaveLength(24);
    expect(spanSeconds).toBeGreaterThanOrEqual((24 - 1) / 10 - 0.05);
  }, 120_000);

  it('makes throttled emails wait in the queue, never counting them failed', async () => {
    const throttledOnce = new Set<string>();
    const throttles = (ses: EmailTransport): EmailTransport => ({
      name: 'throttles',
      send: async (email) => {
        if (!throttledOnce.has(email.to) && throttledOnce.size < 6) {
          throttledOnce.add(email.to);
          throw new DeliveryError(
            'throttled',
            'SES TooManyRequestsException: Maximum sending rate exceeded.',
          );
        }
        return ses.send(email);
      },
    });
    const p = await run({ transport: throttles });
    const recipients = await p.registerNonprofits(12);
    const { job } = await p.submit(recipients);

    const recorded = await expectExactlyOnce(p, job.job_id, recipients, { sent: 12, failed: 0 });
    expect(throttledOnce.size).toBe(6);
    expect([...recorded.values()].every((delivery) => delivery.error === undefined)).toBe(true);
    await expectMailedOnce(p, recipients);
  }, 120_000);

  it('retries an email SES answered with a server error after its lease, once, never counting it failed', async () => {
    const refused = new Set<string>();
    const unavailable = (ses: EmailTransport): EmailTransport => ({
      name: 'unavailable',
      send: async (email) => {
        // SES's 5xx before it took the email: the claim is kept (SES might have taken it), so the
        // retry waits out the lease, then sends.
        if (!refused.has(email.to) && refused.size < 5) {
          refused.add(email.to);
          throw new DeliveryError('unavailable', 'SES InternalFailure: 500');
        }
        return ses.send(email);
      },
    });
    // SES may have taken an email it answered with a 5xx: its claim (its chunk's, the one chunk of
    // these ten) must never be given back early.
    const released = new Set<string>();
    let chunksReleased = 0;
    const p = await run({
      transport: unavailable,
      deliveries: (real) => ({
        ...passThrough(real),
        release: (jobId, recipient, token) => {
          released.add(recipient);
          return real.release(jobId, recipient, token);
        },
        releaseChunk: (...args) => {
          chunksReleased++;
          return real.releaseChunk(...args);
        },
      }),
    });
    const recipients = await p.registerNonprofits(10);
    const { job } = await p.submit(recipients);

    const recorded = await expectExactlyOnce(p, job.job_id, recipients, { sent: 10, failed: 0 });
    expect(refused.size).toBe(5);
    expect([...refused].filter((recipient) => released.has(recipient))).toEqual([]);
    expect(chunksReleased).toBe(0);
    expect([...recorded.values()].every((delivery) => delivery.error === undefined)).toBe(true);
    await expectMailedOnce(p, recipients);
  }, 120_000);

  it('sends nothing and fails nothing while sending is paused, then sends each email once', async () => {
    let paused = true;
    let refusals = 0;
    const pausable = (ses: EmailTransport): EmailTransport => ({
      name: 'pausable',
      send: async (email) => {
        if (paused) {
          refusals++;
          throw new DeliveryError(
            'paused',
            'SES SendingPausedException: Sending is paused for this account.',
          );
        }
        return ses.send(email);
      },
    });
    const p = await run({ transport: pausable });
    const recipients = await p.registerNonprofits(15);
    const { job } = await p.submit(recipients);

    const deadline = Date.now() + 60_000;
    while (refusals < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(refusals).toBeGreaterThanOrEqual(3);
    expect(await p.jobs.get(job.job_id)).toMatchObject({ sent: 0, failed: 0 });
    expect([...(await p.emailsReceived(recipients)).values()].every((count) => count === 0)).toBe(true);
    paused = false;

    await expectExactlyOnce(p, job.job_id, recipients, { sent: 15, failed: 0 });
    await expectMailedOnce(p, recipients);
  }, 120_000);
});
