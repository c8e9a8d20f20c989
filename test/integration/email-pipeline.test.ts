import { randomUUID } from 'node:crypto';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { STORED_LINK } from '../../lambdas/core/jobs/render-email';
import { type EmailMessage, type EmailQueue, recipientsOf } from '../../lambdas/core/queue/email-queue';
import { verifyUnsubscribeToken } from '../../lambdas/core/suppressions/unsubscribe-token';
import { textFooter } from '../../lambdas/core/templates/footer';
import { SendPacer } from '../../lambdas/core/transport/send-pacer';
import { DeliveryError, type EmailTransport, RecordTransport } from '../../lambdas/core/transport/transport';
import {
  PIPELINE_FROM,
  PIPELINE_LINK_SECRET,
  PIPELINE_UNSUBSCRIBE_URL,
  type PipelineOptions,
  startPipeline,
} from '../support/pipeline';

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
type Deliveries = Parameters<NonNullable<PipelineOptions['deliveries']>>[0];
let pipeline: Pipeline | undefined;

afterEach(async () => {
  await pipeline?.stop();
  pipeline = undefined;
});

async function run(options: PipelineOptions = {}): Promise<Pipeline> {
  pipeline = await startPipeline(options);
  pipeline.start();
  return pipeline;
}

/** The invariants every scenario ends with: exact counts, one record per recipient, job completed. */
async function expectExactlyOnce(
  p: Pipeline,
  jobId: string,
  recipients: string[],
  expected: { sent: number; failed: number; suppressed?: number },
) {
  const job = await p.waitForEnd(jobId);
  expect(job).toMatchObject({
    status: 'completed',
    total_emails: recipients.length,
    ...expected,
    remaining: 0,
  });
  expect(job.completed_at).toEqual(expect.any(String));
  expect(job.started_at).toEqual(expect.any(String));
  const recorded = await p.recorded(jobId, recipients);
  expect(recorded.size).toBe(recipients.length);
  expect((await p.deliveries.processedRecipients(jobId)).size).toBe(recipients.length);
  expect([...recorded.values()].filter((delivery) => delivery.status === 'sent')).toHaveLength(expected.sent);
  return recorded;
}

/** The real claims, with recording replaced: to inject faults where outcomes are written. */
const recordingWith =
  (record: (real: Deliveries) => Deliveries['record']): NonNullable<PipelineOptions['deliveries']> =>
  (real) => ({ ...passThrough(real), record: record(real) });

/** Every call of the real deliveries, as they are: a test replaces the ones it injects faults into. */
const passThrough = (real: Deliveries): Deliveries => ({
  claim: (...args) => real.claim(...args),
  handOver: (...args) => real.handOver(...args),
  release: (...args) => real.release(...args),
  claimChunk: (...args) => real.claimChunk(...args),
  releaseChunk: (...args) => real.releaseChunk(...args),
  recordCopies: (...args) => real.recordCopies(...args),
  record: (...args) => real.record(...args),
});

/** What the local SES received: exactly one email per recipient recorded sent, none for the others. */
async function expectMailedOnce(p: Pipeline, recipients: string[], sent: Set<string> = new Set(recipients)) {
  const received = await p.emailsReceived(recipients);
  const wrong = [...received].filter(([recipient, count]) => count !== (sent.has(recipient) ? 1 : 0));
  expect(wrong).toEqual([]);
}

describe('the email pipeline on DynamoDB Local and local SQS', () => {
  it('renders every email with the nonprofit at send time and completes with exact counts', async () => {
    const p = await run();
    const recipients = await p.registerNonprofits(25);
    const { job } = await p.submit(recipients);

    const recorded = await expectExactlyOnce(p, job.job_id, recipients, { sent: 25, failed: 0 });
    const third = recipients[3] as string;
    expect(recorded.get(third)).toMatchObject({
      status: 'sent',
      attempts: 1,
      message_id: expect.any(String),
    });
    expect((await p.emails(job)).find((email) => email.to === third)).toMatchObject({
      subject: 'For Member 3',
      body: `Dear Member 3 of 3 Main St${textFooter({}, third, STORED_LINK)}`,
    });
    await expectMailedOnce(p, recipients);
    const inbox = await p.inbox();
    // Each email carries its recipient's own one-click unsubscribe link (RFC 8058), signed for it.
    for (const recipient of recipients) {
      const email = inbox.find((received) => received.destination.to.includes(recipient));
      const header = (name: string) => email?.headers?.find((found) => found.name === name)?.value;
      expect(header('List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
      const link = /^<([^>]+)>$/.exec(header('List-Unsubscribe') ?? '')?.[1] ?? '';
      expect(link.startsWith(`${PIPELINE_UNSUBSCRIBE_URL}?token=`)).toBe(true);
      const token = new URL(link).searchParams.get('token') ?? '';
      expect(verifyUnsubscribeToken(PIPELINE_LINK_SECRET, token)).toEqual({
        email: recipient,
        jobId: job.job_id,
        apiKeyId: undefined,
      });
    }
    const email = inbox.find((received) => received.destination.to.includes(third));
    expect(email).toMatchObject({
      messageId: recorded.get(third)?.message_id,
      from: PIPELINE_FROM,
      subject: 'For Member 3',
      destination: { to: [third], cc: [] },
    });
    // The visible footer carries the same link as the header.
    const link = /^<([^>]+)>$/.exec(
      email?.headers.find((found) => found.name === 'List-Unsubscribe')?.value ?? '',
    )?.[1];
    expect(email?.body.text).toBe(`Dear Member 3 of 3 Main St${textFooter({}, third, link)}`);
  });

  it('counts each recipient once when every message is delivered three times', async () => {
    const tripled = (real: EmailQueue): Pick<EmailQueue, 'enqueue'> => ({
      enqueue: async (messages) => {
        await real.enqueue([...messages, ...messages, ...messages]);
      },
    });
    const p = await run({ queue: tripled, concurrency: 6 });
    const recipients = await p.registerNonprofits(120);
    const { job } = await p.submit(recipients);

    await expectExactlyOnce(p, job.job_id, recipients, { sent: 120, failed: 0 });
    await expectMailedOnce(p, recipients);
  });

  it('counts each recipient once when the consumer fails in the middle of batches', async () => {
    let calls = 0;
    let lostAnswers = 0;
    // Every third recording is written, and then its answer is lost (as a consumer that crashed
    // right after the write): the write is tried again and finds it done.
    const writtenThenFail = recordingWith((real) => async (jobId, outcomes) => {
      const result = await real.record(jobId, outcomes);
      if (++calls % 3 === 1) {
        lostAnswers++;
        throw new Error('injected: the answer to a recording was lost');
      }
      return result;
    });
    let invocations = 0;
    // Every fourth invocation does all its work, then throws: Lambda returns every message to the queue.
    const throwAfterWork =
      (real: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>) =>
      async (event: SQSEvent, context: Context) => {
        const result = await real(event, context);
        if (++invocations % 4 === 0) throw new Error('injected: invocation failed after its work');
        return result;
      };
    // A message a batch: enough invocations (six messages of ten) for every fourth to fail.
    const p = await run({ deliveries: writtenThenFail, consumer: throwAfterWork, batchSize: 1 });
    const recipients = await p.registerNonprofits(60);
    const { job } = await p.submit(recipients);

    await expectExactlyOnce(p, job.job_id, recipients, { sent: 60, failed: 0 });
    expect(lostAnswers).toBeGreaterThan(5);
    expect(invocations).toBeGreaterThanOrEqual(4);
    await expectMailedOnce(p, recipients);
  }, 120_000);

  it('records a poison message failed once it reaches the dead-letter queue, and the job still ends', async () => {
    let poison = '';
    const transport = (ses: EmailTransport): EmailTransport => ({
      name: 'flaky',
      send: async (email) => {
        if (email.to === poison) throw new Error('injected: the mail server keeps timing out');
        return ses.send(email);
      },
    });
    // Five receives, each after the visibility timeout: a short lease (1 s, so 2 s) keeps it to seconds.
    const p = await run({ transport, leaseMs: 1_000 });
    const recipients = await p.registerNonprofits(8);
    poison = recipients[5] as string;
    const { job } = await p.submit(recipients);

    const recorded = await expectExactlyOnce(p, job.job_id, recipients, { sent: 7, failed: 1 });
    expect(recorded.get(poison)).toMatchObject({
      status: 'failed',
      error: expect.stringContaining('dead-letter queue'),
      attempts: expect.any(Number),
    });
    expect(recorded.get(poison)?.attempts).toBeGreaterThanOrEqual(1);
    await expectMailedOnce(p, recipients, new Set(recipients.filter((recipient) => recipient !== poison)));
  }, 120_000);

  it('fails a recipient at once when the transport refuses it for good', async () => {
    const transport = (ses: EmailTransport): EmailTransport => ({
      name: 'refusing',
      send: async (email) => {
        if (email.to.startsWith('member0001@'))
          throw new DeliveryError('rejected', 'SES MessageRejected: Mailbox does not exist');
        return ses.send(email);
      },
    });
    const p = await run({ transport });
    const recipients = await p.registerNonprofits(3);
    const { job } = await p.submit(recipients);

    const recorded = await expectExactlyOnce(p, job.job_id, recipients, { sent: 2, failed: 1 });
    expect(recorded.get(recipients[1] as string)).toMatchObject({
      status: 'failed',
      error: 'SES MessageRejected: Mailbox does not exist',
      attempts: 1,
    });
  });

  /**
   * A job of four accepted with its messages held back; then its second nonprofit renamed and its
   * third deleted, before the messages are enqueued.
   */
  const acceptedThenChanged = async () => {
    let enqueued: Parameters<EmailQueue['enqueue']>[0] = [];
    const holdBack = (): Pick<EmailQueue, 'enqueue'> => ({
      enqueue: async (messages) => {
        enqueued = messages;
      },
    });
    const p = await run({ queue: holdBack });
    const recipients = await p.registerNonprofits(4);
    const { job } = await p.submit(recipients);
    await p.nonprofits.update(recipients[1] as string, { name: 'Renamed Later', address: '9 Elsewhere' });
    await p.nonprofits.delete(recipients[2] as string);
    return { p, recipients, job, enqueued };
  };

  it('mails each nonprofit as the registry held it at acceptance: a rename or delete after it changes nothing sent', async () => {
    const { p, recipients, job, enqueued } = await acceptedThenChanged();
    const [renamed, deleted] = [recipients[1] as string, recipients[2] as string];
    await p.queue.enqueue(enqueued);

    await expectExactlyOnce(p, job.job_id, recipients, { sent: 4, failed: 0 });
    const inbox = await p.inbox();
    const subjectTo = (to: string) => inbox.find((email) => email.destination.to.includes(to))?.subject;
    expect(subjectTo(renamed)).toBe('For Member 1');
    expect(subjectTo(deleted)).toBe('For Member 2');
    // What the job's emails show is what was sent.
    expect((await p.emails(job)).find((email) => email.to === renamed)?.subject).toBe('For Member 1');
  });

  it("reads the registry for a chunk queued without its values (the sweeper's), and fails one deleted since, without retrying it", async () => {
    const { p, recipients, job, enqueued } = await acceptedThenChanged();
    // As the sweeper enqueues a lost chunk: its recipients only.
    await p.queue.enqueue(
      enqueued.map((message) => ('recipients' in message ? { ...message, nonprofits: undefined } : message)),
    );

    const recorded = await expectExactlyOnce(p, job.job_id, recipients, { sent: 3, failed: 1 });
    expect(recorded.get(recipients[2] as string)).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: 'The nonprofit was deleted after the job was accepted.',
    });
    const inbox = await p.inbox();
    expect(inbox.find((email) => email.destination.to.includes(recipients[1] as string))?.subject).toBe(
      'For Renamed Later',
    );
  });

  it('finishes a job that was recorded but never enqueued: the sweeper enqueues its recipients', async () => {
    const broken = (): Pick<EmailQueue, 'enqueue'> => ({
      enqueue: async () => {
        throw new Error('injected: crashed between recording the job and enqueueing it');
      },
    });
    const p = await run({ queue: broken });
    const recipients = await p.registerNonprofits(30);
    const { job } = await p.submit(recipients);
    expect((await p.jobs.get(job.job_id))?.status).toBe('queued');

    // The first sweep only notes the job; of two at once after that, exactly one enqueues it.
    expect(await p.sweep(0)).toMatchObject({ jobsNoticed: 1, reenqueued: 0 });
    const [one, other] = await Promise.all([p.sweep(0), p.sweep(0)]);

    expect((one?.reenqueued ?? 0) + (other?.reenqueued ?? 0)).toBe(30);
    await expectExactlyOnce(p, job.job_id, recipients, { sent: 30, failed: 0 });
    // A finished job is not active any more: the next sweep leaves it alone.
    const again = await p.sweep(0);
    expect((await p.jobs.activeJobs()).map((active) => active.job_id)).not.toContain(job.job_id);
    expect(again.reenqueued).toBe(0);
  });

  it('leaves a job alone until its last enqueue is older than the time queue counts take to settle', async () => {
    const p = await run({ queue: () => ({ enqueue: async () => undefined }) });
    const recipients = await p.registerNonprofits(2);
    const { job } = await p.submit(recipients);

    const swept = await p.sweep(60_000);

    expect(swept).toMatchObject({ jobsChecked: 1, jobsWaiting: 1, jobsSwept: 0, reenqueued: 0 });
    expect((await p.jobs.get(job.job_id))?.status).toBe('queued');
  });

  // Long enough a backlog for many sweeps to meet it, small enough for a busy 2-core machine.
  const RECIPIENTS = 600;
  it('copies no message still queued behind a backlog, and enqueues what was lost once the queues drain', async () => {
    // Each (job, recipient) with the ids of the distinct messages that carried it: a copy made while
    // the original was still queued would be a second id.
    const carriers = new Map<string, Set<string>>();
    let loseMessages = true;
    const p = await startPipeline({
      concurrency: 1,
      // A consumer out of time puts what is left back as a new message, which this test would take
      // for a copy: the one consumer (no other can take its chunks over) has time for its batches.
      consumerTimeoutMs: 60_000,
      // This is about the sweeper and the queue: the ledger-only transport keeps the backlog quick.
      transport: () => new RecordTransport(),
      queue: (real) => ({
        enqueue: async (messages) => {
          if (loseMessages) throw new Error('injected: the enqueue was cut short');
          await real.enqueue(messages);
        },
      }),
      consumer: (real) => async (event, context) => {
        for (const { body, messageId } of event.Records) {
          const message = JSON.parse(body) as EmailMessage;
          for (const recipient of recipientsOf(message)) {
            const carrier = `${message.job_id}\n${recipient}`;
            carriers.set(carrier, (carriers.get(carrier) ?? new Set()).add(messageId));
          }
        }
        return real(event, context);
      },
    });
    pipeline = p;
    const recipients = await p.registerNonprofits(RECIPIENTS);
    const lost = (await p.submit(recipients)).job;
    loseMessages = false;
    const queued = [(await p.submit(recipients)).job, (await p.submit(recipients)).job];
    p.start();

    // Sweep every 100 ms, settling time 0, while one consumer works through the backlog.
    const sweeps: Awaited<ReturnType<Pipeline['sweep']>>[] = [];
    const deadline = Date.now() + 120_000;
    while ((await p.jobs.activeJobs()).length > 0 && Date.now() < deadline) {
      sweeps.push(await p.sweep(0));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const duringBacklog = sweeps.filter((sweep) => !sweep.queuesEmpty);
    expect(duringBacklog.length).toBeGreaterThan(3);
    expect(duringBacklog.every((sweep) => sweep.reenqueued === 0)).toBe(true);
    // The lost job was enqueued again once the queues drained (a loaded machine may lose a few more
    // of the API's own sends, which the same sweep recovers).
    expect(sweeps.reduce((total, sweep) => total + sweep.reenqueued, 0)).toBeGreaterThanOrEqual(RECIPIENTS);
    for (const job of [lost, ...queued]) {
      await expectExactlyOnce(p, job.job_id, recipients, { sent: RECIPIENTS, failed: 0 });
    }
    for (const job of [lost, ...queued]) {
      for (const recipient of recipients) {
        expect(carriers.get(`${job.job_id}\n${recipient}`)?.size).toBe(1);
      }
    }
    expect([...carriers.entries()].filter(([, ids]) => ids.size > 1)).toEqual([]);
  }, 240_000);
});

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
      expect(verifyUnsubscribeToken(PIPELINE_LINK_SECRET, token)?.email).toBe(email.destination.to[0]);
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
