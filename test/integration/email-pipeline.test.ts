import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProgressRecorder } from '../../lambdas/core/jobs/deliveries';
import type { EmailQueue } from '../../lambdas/core/queue/email-queue';
import { type EmailTransport, PermanentDeliveryError } from '../../lambdas/core/transport/transport';
import { type PipelineOptions, startPipeline } from '../support/pipeline';

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
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
  expected: { sent: number; failed: number },
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

describe('the email pipeline on DynamoDB Local and local SQS', () => {
  it('renders every email with the nonprofit at send time and completes with exact counts', async () => {
    const p = await run();
    const recipients = await p.registerNonprofits(25);
    const { job } = await p.submit(recipients);

    const recorded = await expectExactlyOnce(p, job.job_id, recipients, { sent: 25, failed: 0 });
    expect(recorded.get(recipients[3] as string)).toMatchObject({
      status: 'sent',
      subject: 'For Member 3',
      body: 'Dear Member 3 of 3 Main St',
      attempts: 1,
    });
  });

  it('counts each recipient once when every message is delivered three times', async () => {
    const tripled = (real: EmailQueue): EmailQueue => ({
      enqueue: async (messages) => {
        await real.enqueue([...messages, ...messages, ...messages]);
      },
    });
    const p = await run({ queue: tripled, concurrency: 6 });
    const recipients = await p.registerNonprofits(120);
    const { job } = await p.submit(recipients);

    await expectExactlyOnce(p, job.job_id, recipients, { sent: 120, failed: 0 });
  });

  it('counts each recipient once when the consumer fails in the middle of batches', async () => {
    let calls = 0;
    // Records the first half of a batch's outcomes, then fails: the whole batch comes back.
    const halfThenFail = (real: ProgressRecorder): ProgressRecorder => ({
      record: async (jobId, outcomes) => {
        calls++;
        if (calls % 3 === 1 && outcomes.length > 1) {
          await real.record(jobId, outcomes.slice(0, Math.ceil(outcomes.length / 2)));
          throw new Error('injected: crashed after recording part of the batch');
        }
        return real.record(jobId, outcomes);
      },
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
    const p = await run({ progress: halfThenFail, consumer: throwAfterWork });
    const recipients = await p.registerNonprofits(60);
    const { job } = await p.submit(recipients);

    const recorded = await expectExactlyOnce(p, job.job_id, recipients, { sent: 60, failed: 0 });
    expect([...recorded.values()].some((delivery) => delivery.attempts > 1)).toBe(true);
  });

  it('records a poison message failed once it reaches the dead-letter queue, and the job still ends', async () => {
    let poison = '';
    const transport: EmailTransport = {
      name: 'flaky',
      send: async (email) => {
        if (email.to === poison) throw new Error('injected: the mail server keeps timing out');
      },
    };
    const p = await run({ transport });
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
  }, 60_000);

  it('fails a recipient at once when the transport refuses it for good', async () => {
    const transport: EmailTransport = {
      name: 'refusing',
      send: async (email) => {
        if (email.to.startsWith('member0001@')) throw new PermanentDeliveryError('Mailbox does not exist');
      },
    };
    const p = await run({ transport });
    const recipients = await p.registerNonprofits(3);
    const { job } = await p.submit(recipients);

    const recorded = await expectExactlyOnce(p, job.job_id, recipients, { sent: 2, failed: 1 });
    expect(recorded.get(recipients[1] as string)).toMatchObject({
      status: 'failed',
      error: 'Mailbox does not exist',
      attempts: 1,
    });
  });

  it('fails a recipient whose nonprofit was deleted after the job was accepted, without retrying it', async () => {
    let enqueued: Parameters<EmailQueue['enqueue']>[0] = [];
    const holdBack = (): EmailQueue => ({
      enqueue: async (messages) => {
        enqueued = messages;
      },
    });
    const p = await run({ queue: holdBack });
    const recipients = await p.registerNonprofits(4);
    const { job } = await p.submit(recipients);
    await p.nonprofits.delete(recipients[2] as string);
    await p.queue.enqueue(enqueued);

    const recorded = await expectExactlyOnce(p, job.job_id, recipients, { sent: 3, failed: 1 });
    expect(recorded.get(recipients[2] as string)).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: 'The nonprofit was deleted after the job was accepted.',
    });
  });

  it('finishes a job that was recorded but never enqueued: the sweeper enqueues its recipients', async () => {
    const broken = (): EmailQueue => ({
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
      queue: (real) => ({
        enqueue: async (messages) => {
          if (loseMessages) throw new Error('injected: the enqueue was cut short');
          await real.enqueue(messages);
        },
      }),
      consumer: (real) => async (event, context) => {
        for (const { body, messageId } of event.Records) {
          carriers.set(body, (carriers.get(body) ?? new Set()).add(messageId));
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
        expect(carriers.get(JSON.stringify({ job_id: job.job_id, recipient }))?.size).toBe(1);
      }
    }
    expect([...carriers.entries()].filter(([, ids]) => ids.size > 1)).toEqual([]);
  }, 240_000);
});
