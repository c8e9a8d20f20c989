import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { STORED_LINK } from '../../lambdas/core/jobs/render-email';
import { type EmailMessage, type EmailQueue, recipientsOf } from '../../lambdas/core/queue/email-queue';
import { verifyUnsubscribeToken } from '../../lambdas/core/suppressions/unsubscribe-token';
import { textFooter } from '../../lambdas/core/templates/footer';
import { DeliveryError, type EmailTransport, RecordTransport } from '../../lambdas/core/transport/transport';
import { PIPELINE_FROM, PIPELINE_LINK_SECRET, PIPELINE_UNSUBSCRIBE_URL } from '../support/pipeline';
import {
  expectExactlyOnce,
  expectMailedOnce,
  type Pipeline,
  recordingWith,
  usePipelines,
} from '../support/pipeline-scenarios';

const run = usePipelines();

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
      expect(verifyUnsubscribeToken({ current: PIPELINE_LINK_SECRET }, token)).toEqual({
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
    let finished = 0;
    let thrownAfterWork = 0;
    // The first invocation that finishes its work, and every fourth after it, then throws: Lambda
    // returns every message of the batch to the queue. Counted from the first, not the fourth: how
    // many invocations finish depends on which of them the lost answers above hit, and on a loaded
    // machine as few as three did, so "every fourth" sometimes never threw.
    const throwAfterWork =
      (real: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>) =>
      async (event: SQSEvent, context: Context) => {
        const result = await real(event, context);
        if (++finished % 4 === 1) {
          thrownAfterWork++;
          throw new Error('injected: invocation failed after its work');
        }
        return result;
      };
    // A message a batch: six messages of ten, so several invocations, some of them failing.
    const p = await run({ deliveries: writtenThenFail, consumer: throwAfterWork, batchSize: 1 });
    const recipients = await p.registerNonprofits(60);
    const { job } = await p.submit(recipients);

    await expectExactlyOnce(p, job.job_id, recipients, { sent: 60, failed: 0 });
    expect(lostAnswers).toBeGreaterThan(5);
    expect(thrownAfterWork).toBeGreaterThanOrEqual(1);
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
    const p = await run(
      {
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
      },
      { start: false },
    );
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
