import { randomUUID } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { SEND_CONCURRENCY } from '../../../lambdas/core/jobs/consumer/send-step';
import { ClaimLostError } from '../../../lambdas/core/jobs/deliveries';
import type { JobContent } from '../../../lambdas/core/jobs/job';
import {
  type ProcessEmailsDependencies,
  processEmailBatch,
  type ReceivedMessage,
  recordDeadLetters,
} from '../../../lambdas/core/jobs/process-emails';
import type { RenderSnapshot } from '../../../lambdas/core/jobs/rendered-emails';
import type { Nonprofit } from '../../../lambdas/core/nonprofits/nonprofit';
import { type EmailMessage, recipientsOf } from '../../../lambdas/core/queue/email-queue';
import { verifyUnsubscribeToken } from '../../../lambdas/core/suppressions/unsubscribe-token';
import { textFooter } from '../../../lambdas/core/templates/footer';
import { SendPacer } from '../../../lambdas/core/transport/send-pacer';
import {
  DeliveryError,
  type EmailTransport,
  RecordTransport,
  type RenderedEmail,
} from '../../../lambdas/core/transport/transport';
import { FakeDeliveries } from './fake-deliveries';

const ACCEPTED_AT = '2026-11-27T10:00:00.000Z';
const NOW = Date.parse('2026-11-27T10:00:02.500Z');
const LEASE_MS = 60_000;
const WAITS = { throttledSeconds: 10, pausedSeconds: 60 };
const SETTINGS = {
  maxRenderedBytes: 256 * 1024,
  defaultSubject: '(no subject)',
  senderName: 'Acme Relief',
  senderPostalAddress: '1 Main St, Springfield',
};
/** The text footer a reader's message ends with, without a link (these consumers sign none unless asked). */
const footer = (reader: string) => textFooter(SETTINGS, reader, undefined);

const nonprofit = (email: string, fields: Partial<Nonprofit> = {}): Nonprofit => ({
  email,
  domain: 'example.org',
  name: email.split('@')[0] ?? '',
  address: 'A',
  created_at: '',
  updated_at: '',
  ...fields,
});

/** A transport that takes every email, answering with an id of its own. */
const accepting = (): EmailTransport & { send: ReturnType<typeof vi.fn> } => ({
  name: 'fake',
  send: vi.fn(async (email: RenderedEmail) => ({ messageId: `ses-${email.reader}` })),
});

/**
 * A consumer over in-memory ports. Each call makes a job of its own: the consumer keeps compiled jobs
 * per execution environment, by id.
 */
function consumer(
  options: {
    content?: Partial<JobContent>;
    nonprofits?: Nonprofit[];
    total?: number;
    transport?: EmailTransport;
    /** Addresses on the suppression list (as unsubscribed). */
    suppressed?: string[];
    /** Whether the job was cancelled, asked at each look (once per batch, and before a send when the last look is over a second old). */
    cancelled?: () => boolean;
    /** Whether the job has ended, and its run (retries started), asked at the same looks. */
    ended?: () => boolean;
    run?: () => number;
    overrides?: Partial<ProcessEmailsDependencies>;
  } = {},
) {
  const jobId = randomUUID();
  const content: JobContent = {
    template: 'Hi {name}',
    subject: 'To {email}',
    cc: [],
    accepted_at: ACCEPTED_AT,
    ...options.content,
  };
  const registered = new Map(
    (options.nonprofits ?? [nonprofit('a@example.org'), nonprofit('b@example.org')]).map((found) => [
      found.email,
      found,
    ]),
  );
  let clock = NOW;
  const suppressed = new Map(
    (options.suppressed ?? []).map((email) => [
      email,
      { email, reason: 'unsubscribed' as const, suppressed_at: ACCEPTED_AT },
    ]),
  );
  const deliveries = new FakeDeliveries({
    jobs: { [jobId]: options.total ?? 2 },
    leaseMs: LEASE_MS,
    now: () => clock,
  });
  const deferred: { message: EmailMessage; delaySeconds: number }[] = [];
  const transport = options.transport ?? accepting();
  const deps: ProcessEmailsDependencies = {
    contents: { content: async (id: string) => (id === jobId ? content : undefined) },
    nonprofits: {
      getMany: async (emails: readonly string[]) =>
        new Map(
          emails.flatMap((email) => {
            const found = registered.get(email);
            return found ? [[email, found] as const] : [];
          }),
        ),
    },
    transport,
    deliveries,
    jobs: {
      sendingLook: vi.fn(async () => ({
        cancelled: options.cancelled?.() ?? false,
        ended: options.ended?.() ?? false,
        run: options.run?.() ?? 0,
      })),
    },
    suppressions: {
      getMany: vi.fn(
        async (emails: readonly string[]) =>
          new Map(
            emails.flatMap((email) => {
              const found = suppressed.get(email);
              return found ? [[email, found] as const] : [];
            }),
          ),
      ),
    },
    queue: {
      defer: vi.fn(async (message: EmailMessage, delaySeconds: number) => {
        deferred.push({ message, delaySeconds });
      }),
      returnAfter: vi.fn(async (_receiptHandle: string, _seconds: number) => undefined),
    },
    settings: SETTINGS,
    waits: WAITS,
    log: vi.fn(),
    now: () => new Date(clock),
    ...options.overrides,
  };
  /** A received message of the job: its body's own fields, the deferrals and receive count given. */
  const received = (
    id: string,
    body: Record<string, unknown>,
    fields: { receiveCount?: number; deferrals?: number } = {},
  ) =>
    ({
      messageId: id,
      body: JSON.stringify({
        job_id: jobId,
        ...body,
        ...(fields.deferrals === undefined ? {} : { deferrals: fields.deferrals }),
      }),
      receiveCount: fields.receiveCount ?? 1,
      receiptHandle: `handle-${id}`,
    }) satisfies ReceivedMessage;
  /** A message of one recipient (a retry's, or of a version before chunks). */
  const message = (id: string, recipient: string, fields?: { receiveCount?: number; deferrals?: number }) =>
    received(id, { recipient }, fields);
  /** A chunk message: `recipients` as chunk `number` of the job. */
  const chunk = (
    id: string,
    number: number,
    recipients: string[],
    fields?: { receiveCount?: number; deferrals?: number },
  ) => received(id, { chunk: number, recipients }, fields);
  return {
    jobId,
    deps,
    deliveries,
    deferred,
    transport,
    message,
    chunk,
    advance: (ms: number) => {
      clock += ms;
    },
    /** What the invocation has left, from a timeout that started at NOW. */
    remainingOf: (timeoutMs: number) => () => timeoutMs - (clock - NOW),
  };
}

/** A transport that refuses every email the same way. */
const refusing = (error: () => Error): EmailTransport & { send: ReturnType<typeof vi.fn> } => ({
  name: 'refusing',
  send: vi.fn(async () => {
    throw error();
  }),
});

describe('processEmailBatch', () => {
  it('renders, sends and records each email under its claim, with the receive count as attempts', async () => {
    const { deps, deliveries, jobId, message, transport } = consumer({ total: 1 });

    const result = await processEmailBatch(deps, [message('1', 'a@example.org', { receiveCount: 2 })]);

    expect(result).toEqual({
      retry: [],
      retriedRecipients: 0,
      sent: 1,
      failed: { nonprofitDeleted: 0, rejected: 0, tooLarge: 0, deadLetter: 0 },
      suppressed: 0,
      cancelled: 0,
      duplicates: 0,
      deferred: 0,
      paused: false,
      latenciesMs: [2500],
    });
    expect(transport.send).toHaveBeenCalledWith({
      to: 'a@example.org',
      cc: [],
      reader: 'a@example.org',
      subject: 'To a@example.org',
      text: `Hi a${footer('a@example.org')}`,
      jobId,
    });
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'sent',
      attempts: 2,
      message_id: 'ses-a@example.org',
    });
  });

  it('records an email the record transport took as sent, without a message id', async () => {
    const { deps, deliveries, jobId, message } = consumer({ transport: new RecordTransport() });

    const result = await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(result.sent).toBe(1);
    const stored = deliveries.get(jobId, 'a@example.org');
    expect(stored?.status).toBe('sent');
    expect(stored).not.toHaveProperty('message_id');
  });

  it('drops messages that can never succeed (not ours, or of a job that does not exist), logging them', async () => {
    const { deps, transport } = consumer();
    const result = await processEmailBatch(deps, [
      { messageId: '1', body: 'not json', receiveCount: 1 },
      {
        messageId: '2',
        body: JSON.stringify({ job_id: 'nope', recipient: 'a@example.org' }),
        receiveCount: 1,
      },
      {
        messageId: '3',
        body: JSON.stringify({ job_id: '00000000-0000-4000-8000-000000000000', recipient: 'a@example.org' }),
        receiveCount: 1,
      },
    ]);
    expect(result.retry).toEqual([]);
    expect(transport.send).not.toHaveBeenCalled();
    expect(deps.log).toHaveBeenCalledTimes(3);
  });

  it('fails a recipient whose nonprofit was deleted since the job was accepted, without sending', async () => {
    const { deps, deliveries, jobId, message, transport } = consumer({ nonprofits: [] });
    const result = await processEmailBatch(deps, [message('1', 'a@example.org')]);
    expect(result.failed.nonprofitDeleted).toBe(1);
    expect(transport.send).not.toHaveBeenCalled();
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({ status: 'failed' });
  });

  it('returns the messages of a job whose outcomes could not be recorded, and only those', async () => {
    const { deps, deliveries, message } = consumer();
    vi.spyOn(deliveries, 'record').mockRejectedValue(new Error('throttled'));
    const result = await processEmailBatch(deps, [
      message('1', 'a@example.org'),
      message('2', 'b@example.org'),
      { messageId: '3', body: 'garbage', receiveCount: 1 },
    ]);
    expect(result.retry.toSorted()).toEqual(['1', '2']);
    expect(result.sent).toBe(0);
  });

  it('returns a message whose transport failed transiently, recording the others', async () => {
    const transport: EmailTransport = {
      name: 'flaky',
      send: async (email) => {
        if (email.to === 'b@example.org') throw new Error('timeout');
        return { messageId: 'ses-1' };
      },
    };
    const { deps, deliveries, jobId, message } = consumer({ transport });
    const result = await processEmailBatch(deps, [
      message('1', 'a@example.org'),
      message('2', 'b@example.org'),
    ]);
    expect(result.retry).toEqual(['2']);
    expect(result.sent).toBe(1);
    expect(deliveries.get(jobId, 'a@example.org')?.status).toBe('sent');
    expect(deliveries.get(jobId, 'b@example.org')?.status).toBe('sending');
  });
});

describe('each recipient is sent at most once', () => {
  it('sends nothing for a duplicate message of a recipient already done', async () => {
    const { deps, message, transport } = consumer();
    await processEmailBatch(deps, [message('1', 'a@example.org')]);

    const again = await processEmailBatch(deps, [message('1-again', 'a@example.org', { receiveCount: 2 })]);

    expect(transport.send).toHaveBeenCalledTimes(1);
    expect(again).toMatchObject({ sent: 0, duplicates: 1, retry: [], deferred: 0 });
  });

  it('drops, unclaimed, a message of a job that has ended: every recipient is counted, so it is a stray duplicate', async () => {
    const { deps, deliveries, jobId, message, transport } = consumer({ ended: () => true });

    const result = await processEmailBatch(deps, [message('1', 'a@example.org', { receiveCount: 2 })]);

    expect(transport.send).not.toHaveBeenCalled();
    expect(result).toMatchObject({ sent: 0, duplicates: 1, retry: [] });
    // No claim was written: an erased address is not stored again by a duplicate of its email.
    expect(deliveries.isFree(jobId, 'a@example.org')).toBe(true);
  });

  it('compiles a job once per run: a retry reads the content again (an erasure may have rewritten its cc)', async () => {
    let run = 0;
    let cc = ['board@example.org'];
    const content = vi.fn(async () => ({
      template: 'Hi {name}',
      subject: 'S',
      cc,
      accepted_at: ACCEPTED_AT,
    }));
    const { deps, message, transport } = consumer({
      nonprofits: ['a', 'b', 'c'].map((name) => nonprofit(`${name}@example.org`)),
      total: 3,
      suppressed: ['erased:0123'],
      run: () => run,
      overrides: { contents: { content } },
    });

    await processEmailBatch(deps, [message('1', 'a@example.org')]);
    cc = ['erased:0123'];
    await processEmailBatch(deps, [message('2', 'b@example.org')]);
    run = 1;
    await processEmailBatch(deps, [message('3', 'c@example.org')]);

    expect(content).toHaveBeenCalledTimes(2);
    const ccOf = (recipient: string) =>
      vi.mocked(transport.send).mock.calls.find(([email]) => email.to === recipient)?.[0].cc;
    expect(ccOf('b@example.org')).toEqual(['board@example.org']);
    // The erased cc, now its key, is suppressed under the key: no copy.
    expect(ccOf('c@example.org')).toEqual([]);
  });

  it('leaves an email whose claim another consumer holds to come back just after the lease, without sending it', async () => {
    const { deps, deliveries, jobId, message, transport } = consumer();
    const other = (await deliveries.claim(jobId, [{ recipient: 'a@example.org', attempts: 1 }])).get(
      'a@example.org',
    );
    if (other?.state !== 'claimed') throw new Error('the other consumer should have claimed');

    const result = await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(transport.send).not.toHaveBeenCalled();
    // The received message goes back to the queue, hidden until the lease has lapsed.
    expect(result).toMatchObject({ sent: 0, retry: ['1'], deferred: 0, duplicates: 0 });
    expect(deps.queue.defer).not.toHaveBeenCalled();
    expect(deps.queue.returnAfter).toHaveBeenCalledTimes(1);
    expect(deps.queue.returnAfter).toHaveBeenCalledWith('handle-1', expect.any(Number));
    const [, seconds] = vi.mocked(deps.queue.returnAfter).mock.calls[0] ?? [];
    expect((seconds ?? 0) * 1000).toBeGreaterThan(LEASE_MS);
    expect((seconds ?? 0) * 1000).toBeLessThanOrEqual(LEASE_MS + 5_000);
    // The other consumer's claim is left alone: it may still record its outcome.
    expect(deliveries.get(jobId, 'a@example.org')?.status).toBe('sending');
  });

  it('still retries a held message when its return cannot be timed', async () => {
    const { deps, deliveries, jobId, message, transport } = consumer();
    await deliveries.claim(jobId, [{ recipient: 'a@example.org', attempts: 1 }]);
    vi.mocked(deps.queue.returnAfter).mockRejectedValueOnce(new Error('ReceiptHandleIsInvalid'));

    const result = await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(transport.send).not.toHaveBeenCalled();
    expect(result.retry).toEqual(['1']);
  });

  it('sends a recipient the queue delivered twice in one batch at most once, and keeps one of the messages', async () => {
    const transport = accepting();
    const { deps, message } = consumer({ transport });
    const result = await processEmailBatch(deps, [
      message('1', 'a@example.org'),
      message('2', 'a@example.org'),
    ]);
    expect(transport.send.mock.calls.length).toBeLessThanOrEqual(1);
    expect(result.duplicates).toBe(1);
    // Sent now, or back to the queue: never dropped with the duplicate.
    expect(result.sent + result.retry.length).toBe(1);
  });

  it('records a handed-over email as sent with its message id, without calling the transport', async () => {
    const { deps, deliveries, jobId, message, transport } = consumer();
    const earlier = (await deliveries.claim(jobId, [{ recipient: 'a@example.org', attempts: 1 }])).get(
      'a@example.org',
    );
    if (earlier?.state !== 'claimed') throw new Error('the earlier attempt should have claimed');
    await deliveries.handOver(jobId, 'a@example.org', earlier.token, 'ses-earlier');

    const result = await processEmailBatch(deps, [message('1', 'a@example.org', { receiveCount: 2 })]);

    expect(transport.send).not.toHaveBeenCalled();
    expect(result).toMatchObject({ sent: 1, retry: [], deferred: 0 });
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'sent',
      message_id: 'ses-earlier',
      attempts: 2,
    });
  });

  it('writes the outcome with its message id in one write after the send, trying again when a write fails', async () => {
    const { deps, deliveries, jobId, message, transport } = consumer();
    const record = vi.spyOn(deliveries, 'record').mockRejectedValueOnce(new Error('ThrottlingException'));

    const first = await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(first).toMatchObject({ sent: 1, retry: [] });
    expect(record).toHaveBeenCalledTimes(2);
    expect(transport.send).toHaveBeenCalledTimes(1);
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'sent',
      message_id: 'ses-a@example.org',
    });
  });

  it('records an email an earlier version handed over (its message id on the claim) as sent, without sending it again', async () => {
    const { deps, deliveries, jobId, message, transport } = consumer();
    const claim = (await deliveries.claim(jobId, [{ recipient: 'a@example.org', attempts: 1 }])).get(
      'a@example.org',
    );
    if (claim?.state !== 'claimed') throw new Error('not claimed');
    await deliveries.handOver(jobId, 'a@example.org', claim.token, 'ses-earlier', { snapshot: 'snap-1' });
    await deliveries.release(jobId, 'a@example.org', claim.token);

    const again = await processEmailBatch(deps, [message('1', 'a@example.org', { receiveCount: 2 })]);

    expect(transport.send).not.toHaveBeenCalled();
    expect(again).toMatchObject({ sent: 1, retry: [] });
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'sent',
      message_id: 'ses-earlier',
      snapshot: 'snap-1',
    });
  });

  it('keeps the claim and retries the message when the transport fails without saying whether it took the email', async () => {
    const transport = refusing(() => new Error('socket hang up'));
    const { deps, deliveries, jobId, message } = consumer({ transport });

    const result = await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(result).toMatchObject({ retry: ['1'], deferred: 0, sent: 0 });
    expect(deps.queue.defer).not.toHaveBeenCalled();
    // Until the lease lapses, no other attempt may send it.
    const now = await deliveries.claim(jobId, [{ recipient: 'a@example.org', attempts: 2 }]);
    expect(now.get('a@example.org')?.state).toBe('held');
  });
});

describe('what the transport says decides what becomes of the email', () => {
  it('fails the recipient with the reason when the email is rejected', async () => {
    const transport = refusing(
      () => new DeliveryError('rejected', 'SES MessageRejected: Email address is not verified.'),
    );
    const { deps, deliveries, jobId, message } = consumer({ transport });

    const result = await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(result).toMatchObject({ sent: 0, retry: [], deferred: 0 });
    expect(result.failed.rejected).toBe(1);
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'failed',
      error: 'SES MessageRejected: Email address is not verified.',
    });
  });

  it('gives a throttled claim back and puts the email back to wait, longer each time', async () => {
    const transport = refusing(
      () => new DeliveryError('throttled', 'SES TooManyRequestsException: slow down'),
    );
    const { deps, deliveries, deferred, jobId, message } = consumer({ transport });

    const first = await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(first).toMatchObject({ sent: 0, deferred: 1, retry: [] });
    expect(deferred[0]?.message).toEqual({ job_id: jobId, recipient: 'a@example.org', deferrals: 1 });
    // The claim was given back: the email was certainly not taken.
    expect(deliveries.isFree(jobId, 'a@example.org')).toBe(true);

    await processEmailBatch(deps, [message('2', 'a@example.org', { deferrals: 1 })]);

    expect(deferred[1]?.message).toEqual({ job_id: jobId, recipient: 'a@example.org', deferrals: 2 });
    const [firstDelay, secondDelay] = deferred.map(({ delaySeconds }) => delaySeconds);
    // The first wait is about the base wait; the next one, about double (each jittered down by at most a fifth).
    expect(firstDelay).toBeGreaterThan(0);
    expect(firstDelay).toBeLessThanOrEqual(WAITS.throttledSeconds);
    expect(secondDelay).toBeGreaterThan(WAITS.throttledSeconds);
    expect(secondDelay).toBeGreaterThan(firstDelay ?? Number.POSITIVE_INFINITY);
  });

  it('keeps the claim of an email SES answered with a server error, and puts the email back to wait', async () => {
    const transport = refusing(() => new DeliveryError('unavailable', 'SES InternalFailure: try again'));
    const { deps, deliveries, deferred, jobId, message } = consumer({ transport });

    const result = await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(result).toMatchObject({ sent: 0, deferred: 1, retry: [], failed: { rejected: 0 } });
    expect(deferred[0]?.message).toEqual({ job_id: jobId, recipient: 'a@example.org', deferrals: 1 });
    // SES may have taken it after all: the claim stays until its lease lapses.
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({ status: 'sending' });
  });

  it('stops sending the rest of the batch when sending is paused, and puts every email back to wait', async () => {
    const transport = refusing(() => new DeliveryError('paused', 'SES SendingPausedException: paused'));
    // More than are sent at once.
    const recipients = Array.from({ length: 2 * SEND_CONCURRENCY + 5 }, (_, n) => `r${n}@example.org`);
    const { deps, deliveries, deferred, jobId, message } = consumer({
      transport,
      nonprofits: recipients.map((email) => nonprofit(email)),
      total: recipients.length,
    });

    const result = await processEmailBatch(
      deps,
      recipients.map((recipient, n) => message(String(n), recipient)),
    );

    expect(result).toMatchObject({ paused: true, sent: 0, deferred: recipients.length, retry: [] });
    // Only the sends already under way when the pause was answered reached the transport.
    expect(transport.send.mock.calls.length).toBeLessThan(recipients.length);
    expect(new Set(deferred.flatMap(({ message: waiting }) => recipientsOf(waiting)))).toEqual(
      new Set(recipients),
    );
    for (const { delaySeconds } of deferred)
      expect(delaySeconds).toBeGreaterThanOrEqual(WAITS.pausedSeconds * 0.8);
    for (const recipient of recipients) expect(deliveries.isFree(jobId, recipient)).toBe(true);
  });

  it('records a suppressed recipient suppressed without sending, and sends the others', async () => {
    const { deps, deliveries, jobId, message, transport } = consumer({ suppressed: ['b@example.org'] });

    const result = await processEmailBatch(deps, [
      message('1', 'a@example.org'),
      message('2', 'b@example.org'),
    ]);

    expect(result).toMatchObject({ sent: 1, suppressed: 1, retry: [] });
    expect(vi.mocked(transport.send).mock.calls.map(([email]) => email.to)).toEqual(['a@example.org']);
    expect(deliveries.get(jobId, 'b@example.org')).toMatchObject({
      status: 'suppressed',
      error: 'The address is suppressed (unsubscribed).',
    });
  });

  it('sends no copy to a suppressed cc address, and records the copies that went', async () => {
    const { deps, deliveries, jobId, message, transport } = consumer({
      content: { cc: ['board@example.org', 'gone@example.org'] },
      suppressed: ['gone@example.org'],
    });

    await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(vi.mocked(transport.send).mock.calls[0]?.[0].cc).toEqual(['board@example.org']);
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'sent',
      cc: ['board@example.org'],
    });
  });

  it('sends nothing and puts the emails back when the suppression list cannot be read', async () => {
    const { deps, deliveries, deferred, jobId, message, transport } = consumer();
    vi.mocked(deps.suppressions.getMany).mockRejectedValueOnce(
      new Error('ProvisionedThroughputExceededException'),
    );

    const result = await processEmailBatch(deps, [
      message('1', 'a@example.org'),
      message('2', 'b@example.org'),
    ]);

    expect(transport.send).not.toHaveBeenCalled();
    expect(result).toMatchObject({ sent: 0, suppressed: 0, deferred: 2, retry: [] });
    expect(deferred).toHaveLength(2);
    expect(deliveries.isFree(jobId, 'a@example.org')).toBe(true);
  });

  it('waits at most a minute between tries while DynamoDB fails, however often the email was put back', async () => {
    const { deps, deferred, message } = consumer();
    vi.mocked(deps.suppressions.getMany).mockRejectedValue(
      new Error('ProvisionedThroughputExceededException'),
    );

    // Put back eight times already: a throttle would wait SQS's 15 minutes now.
    await processEmailBatch(deps, [message('1', 'a@example.org', { deferrals: 8 })]);

    expect(deferred[0]?.message).toMatchObject({ deferrals: 9 });
    expect(deferred[0]?.delaySeconds).toBeGreaterThan(0);
    expect(deferred[0]?.delaySeconds).toBeLessThanOrEqual(60);
  });

  it('stops sending the rest of the batch when a message id cannot be written, and puts the rest back to wait', async () => {
    const recipients = Array.from({ length: 2 * SEND_CONCURRENCY + 5 }, (_, n) => `r${n}@example.org`);
    const { deps, deliveries, deferred, jobId, message, transport } = consumer({
      nonprofits: recipients.map((email) => nonprofit(email)),
      total: recipients.length,
    });
    // DynamoDB fails the write after the send: each further email sent could lose its id and go twice.
    vi.spyOn(deliveries, 'record').mockRejectedValue(new Error('ProvisionedThroughputExceededException'));

    const result = await processEmailBatch(
      deps,
      recipients.map((recipient, n) => message(String(n), recipient)),
    );

    // At most the sends under way together (SEND_CONCURRENCY) when the first write gave up reached the transport.
    const sent = vi.mocked(transport.send).mock.calls.length;
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThanOrEqual(SEND_CONCURRENCY);
    // Those come back (their claims held until the lease ends); the rest wait in the queue, unsent.
    expect(result).toMatchObject({ sent: 0, deferred: recipients.length - sent, paused: false });
    expect(result.retry).toHaveLength(sent);
    expect(deferred).toHaveLength(recipients.length - sent);
    expect(recipients.filter((recipient) => deliveries.get(jobId, recipient)?.status === 'sent')).toEqual([]);
  });

  it('puts emails back instead of sending them when the invocation is about to time out', async () => {
    const { deps, deliveries, deferred, jobId, message, transport, advance, remainingOf } = consumer();
    // A slow claim leaves 4 s of a 30 s invocation: less than the margin kept for the recording.
    const claim = deliveries.claim.bind(deliveries);
    vi.spyOn(deliveries, 'claim').mockImplementation(async (...args) => {
      advance(26_000);
      return claim(...args);
    });

    const result = await processEmailBatch(
      deps,
      [message('1', 'a@example.org'), message('2', 'b@example.org')],
      remainingOf(30_000),
    );

    expect(transport.send).not.toHaveBeenCalled();
    expect(result).toMatchObject({ deferred: 2, sent: 0, retry: [], paused: false });
    expect(deferred.flatMap(({ message: waiting }) => recipientsOf(waiting)).sort()).toEqual([
      'a@example.org',
      'b@example.org',
    ]);
    // Their claims were given back, so the next invocation sends them at once.
    expect(deliveries.isFree(jobId, 'a@example.org')).toBe(true);
    expect(deliveries.isFree(jobId, 'b@example.org')).toBe(true);
  });

  it('does not start an email whose turn at the pacer would come too late, and puts it back', async () => {
    const recipients = ['a', 'b', 'c', 'd'].map((name) => `${name}@example.org`);
    const { deps, deferred, message, transport } = consumer({
      // One recipient per 10 s: the emails' turns are at 0, 10, 20 and 30 s of a 30 s invocation.
      overrides: { pacer: new SendPacer(0.1, { now: () => NOW, sleep: async () => undefined }) },
      nonprofits: recipients.map((email) => nonprofit(email)),
      total: recipients.length,
    });

    const result = await processEmailBatch(
      deps,
      recipients.map((recipient, n) => message(String(n), recipient)),
      () => 30_000,
    );

    // The fourth would start with no time left for the recording.
    expect(transport.send).toHaveBeenCalledTimes(3);
    expect(result).toMatchObject({ sent: 3, deferred: 1, retry: [] });
    expect(deferred.flatMap(({ message: waiting }) => recipientsOf(waiting))).toEqual(['d@example.org']);
    // Visible when the pace allows the next send (30 s on), and running out of time is no reason to wait longer next time.
    expect(deferred[0]?.delaySeconds).toBe(30);
    expect(deferred[0]?.message).not.toHaveProperty('deferrals');
  });

  it('sends in a short invocation, keeping a quarter of it for the recording', async () => {
    const { deps, message, transport, advance, remainingOf, deliveries } = consumer();
    const result = await processEmailBatch(deps, [message('1', 'a@example.org')], remainingOf(4_000));
    expect(transport.send).toHaveBeenCalledTimes(1);
    expect(result).toMatchObject({ sent: 1, deferred: 0 });

    // The same short invocation, with less than its quarter left when it comes to send: it waits.
    const claim = deliveries.claim.bind(deliveries);
    vi.spyOn(deliveries, 'claim').mockImplementation(async (...args) => {
      advance(3_500);
      return claim(...args);
    });
    const late = await processEmailBatch(deps, [message('2', 'b@example.org')], remainingOf(4_000));
    expect(transport.send).toHaveBeenCalledTimes(1);
    expect(late).toMatchObject({ sent: 0, deferred: 1 });
  });

  it('sends while enough of the invocation is left', async () => {
    const { deps, message, transport } = consumer();
    const result = await processEmailBatch(deps, [message('1', 'a@example.org')], () => 20_000);
    expect(transport.send).toHaveBeenCalledTimes(1);
    expect(result.deferred).toBe(0);
  });
});

describe('a cancelled job', () => {
  it('records every claimed recipient cancelled without sending, and ends the job', async () => {
    const { deps, deliveries, jobId, message, transport } = consumer({ cancelled: () => true });

    const result = await processEmailBatch(deps, [
      message('1', 'a@example.org'),
      message('2', 'b@example.org'),
    ]);

    expect(transport.send).not.toHaveBeenCalled();
    expect(result).toMatchObject({ sent: 0, cancelled: 2, retry: [], deferred: 0 });
    expect(deliveries.left(jobId)).toBe(0);
    expect(deliveries.get(jobId, 'b@example.org')).toMatchObject({
      status: 'cancelled',
      error: 'Not sent: the job was cancelled first.',
    });
  });

  it('still records an email an earlier attempt handed over as sent', async () => {
    const { deps, deliveries, jobId, message, transport } = consumer({ cancelled: () => true });
    const earlier = (await deliveries.claim(jobId, [{ recipient: 'a@example.org', attempts: 1 }])).get(
      'a@example.org',
    );
    if (earlier?.state !== 'claimed') throw new Error('the earlier attempt should have claimed');
    await deliveries.handOver(jobId, 'a@example.org', earlier.token, 'ses-earlier');

    const result = await processEmailBatch(deps, [
      message('1', 'a@example.org', { receiveCount: 2 }),
      message('2', 'b@example.org'),
    ]);

    expect(transport.send).not.toHaveBeenCalled();
    expect(result).toMatchObject({ sent: 1, cancelled: 1 });
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'sent',
      message_id: 'ses-earlier',
    });
  });

  it('sends no email whose turn comes after a look sees the cancel, though the batch began before it', async () => {
    let looks = 0;
    // Paced at one email every 1.5 s on the test's clock: the second email's turn comes when the
    // batch's look (which saw the job running) is over a second old, so it looks again, and sees the cancel.
    let elapse: (ms: number) => void = () => undefined;
    let time: () => number = () => 0;
    // The wait moves the clock only after the first sender went on (a real wait lets it run first).
    const pacer = new SendPacer(1 / 1.5, {
      now: () => time(),
      sleep: async (ms) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        elapse(ms);
      },
    });
    const { deps, deliveries, jobId, message, transport, advance } = consumer({
      cancelled: () => ++looks > 1,
      overrides: { pacer },
    });
    elapse = advance;
    time = () => (deps.now?.() ?? new Date()).getTime();

    const result = await processEmailBatch(deps, [
      message('1', 'a@example.org'),
      message('2', 'b@example.org'),
    ]);

    expect(transport.send).toHaveBeenCalledTimes(1);
    expect(result).toMatchObject({ sent: 1, cancelled: 1 });
    expect(looks).toBe(2);
    const statuses = ['a@example.org', 'b@example.org'].map((to) => deliveries.get(jobId, to)?.status);
    expect(statuses.sort()).toEqual(['cancelled', 'sent']);
  });

  it("shares one look at the job's cancel among the emails that start within a second of it", async () => {
    const recipients = Array.from({ length: 10 }, (_, n) => `r${n}@example.org`);
    const { deps, message, transport } = consumer({
      nonprofits: recipients.map((email) => nonprofit(email)),
      total: recipients.length,
    });
    const result = await processEmailBatch(
      deps,
      recipients.map((email, n) => message(String(n), email)),
    );
    expect(result.sent).toBe(10);
    expect(transport.send).toHaveBeenCalledTimes(10);
    expect(deps.jobs.sendingLook).toHaveBeenCalledTimes(1);
  });

  it('once a sender finds the job cancelled, the rest of the batch does not wait a turn at the pacer', async () => {
    const recipients = Array.from({ length: 2 * SEND_CONCURRENCY + 5 }, (_, n) => `r${n}@example.org`);
    const pacer = new SendPacer(1_000, { now: () => 0, sleep: async () => undefined });
    const take = vi.spyOn(pacer, 'take');
    let looks = 0;
    // The batch's look sees the job running and ages past a second; every later look sees the cancel.
    const { deps, message, transport, advance } = consumer({
      nonprofits: recipients.map((email) => nonprofit(email)),
      total: recipients.length,
      cancelled: () => {
        if (++looks > 1) return true;
        advance(1_001);
        return false;
      },
      overrides: { pacer },
    });

    const result = await processEmailBatch(
      deps,
      recipients.map((email, n) => message(String(n), email)),
    );

    expect(transport.send).not.toHaveBeenCalled();
    expect(result).toMatchObject({ sent: 0, cancelled: recipients.length });
    // Only the senders already waiting their turn (those sending at once) took one.
    expect(take.mock.calls.length).toBeLessThanOrEqual(SEND_CONCURRENCY);
  });

  it('sends nothing and puts the email back when whether the job was cancelled cannot be read', async () => {
    const { deps, deferred, jobId, deliveries, message, transport, advance } = consumer({ total: 1 });
    // The batch's look answers and ages past a second; the look before the send fails.
    vi.mocked(deps.jobs.sendingLook)
      .mockImplementationOnce(async () => {
        advance(1_001);
        return { cancelled: false, ended: false, run: 0 };
      })
      .mockRejectedValueOnce(new Error('ProvisionedThroughputExceededException'));

    const result = await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(transport.send).not.toHaveBeenCalled();
    expect(result).toMatchObject({ sent: 0, cancelled: 0, deferred: 1, retry: [] });
    expect(deferred).toHaveLength(1);
    // The claim was given back: the email is tried again as if never claimed.
    expect(deliveries.isFree(jobId, 'a@example.org')).toBe(true);
  });
});

describe('rendering', () => {
  it('fails a recipient whose email renders too large, without sending it', async () => {
    const { deps, deliveries, jobId, message, transport } = consumer({
      content: { template: `${'x'.repeat(100)} {name}` },
      overrides: { settings: { ...SETTINGS, maxRenderedBytes: 100 } },
    });

    const result = await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(transport.send).not.toHaveBeenCalled();
    expect(result.failed.tooLarge).toBe(1);
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'failed',
      error: expect.stringContaining('over the limit of 100 bytes'),
    });
  });

  it('turns line breaks of a stored name into spaces in the subject, and keeps them in the body', async () => {
    const name = 'Acme\r\nBcc: victim@example.net';
    const { deps, message, transport } = consumer({
      content: { subject: 'Hello {name}', template: 'Dear {name}' },
      nonprofits: [nonprofit('a@example.org', { name })],
    });

    await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(transport.send).toHaveBeenCalledWith(
      expect.objectContaining({
        subject: 'Hello Acme  Bcc: victim@example.net',
        text: `Dear ${name}${footer('a@example.org')}`,
      }),
    );
  });

  it('gives an email of a job without a subject the default subject', async () => {
    const { deps, message, transport } = consumer({
      content: { subject: null },
      overrides: { settings: { ...SETTINGS, defaultSubject: 'News from us' } },
    });
    await processEmailBatch(deps, [message('1', 'a@example.org')]);
    expect(transport.send).toHaveBeenCalledWith(expect.objectContaining({ subject: 'News from us' }));
  });

  it("keeps one snapshot of the batch's values before the transport is called, and names it on each outcome", async () => {
    const order: string[] = [];
    const snapshots: RenderSnapshot[] = [];
    const transport: EmailTransport = {
      name: 'ordered',
      send: async (email) => {
        order.push(`send ${email.to}`);
        return { messageId: `ses-${email.to}` };
      },
    };
    const { deps, deliveries, jobId, message } = consumer({
      transport,
      nonprofits: [nonprofit('a@example.org', { address: '1 A St' }), nonprofit('b@example.org')],
      overrides: {
        rendered: {
          putSnapshot: async (id, snapshot) => {
            expect(id).toBe(jobId);
            order.push('snapshot');
            snapshots.push(snapshot);
          },
        },
      },
    });

    await processEmailBatch(deps, [message('1', 'a@example.org'), message('2', 'b@example.org')]);

    expect(order[0]).toBe('snapshot');
    expect(order.slice(1).sort()).toEqual(['send a@example.org', 'send b@example.org']);
    // One write for the batch: the values each email was rendered from, nothing rendered, no link.
    expect(snapshots).toEqual([
      {
        id: expect.any(String),
        nonprofits: {
          'a@example.org': { name: 'a', address: '1 A St' },
          'b@example.org': { name: 'b', address: 'A' },
        },
      },
    ]);
    for (const recipient of ['a@example.org', 'b@example.org'])
      expect(deliveries.get(jobId, recipient)).toMatchObject({ status: 'sent', snapshot: snapshots[0]?.id });
  });

  it('names the snapshot the email was rendered from on its sent outcome', async () => {
    const { deps, deliveries, jobId, message } = consumer({
      total: 1,
      overrides: { rendered: { putSnapshot: async () => undefined } },
    });
    const result = await processEmailBatch(deps, [message('1', 'a@example.org')]);
    expect(result.sent).toBe(1);
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'sent',
      snapshot: expect.any(String),
    });
  });

  it('sends nothing and puts the emails back when the snapshot cannot be kept', async () => {
    const { deps, message, transport } = consumer({
      overrides: {
        rendered: {
          putSnapshot: async () => {
            throw new Error('ProvisionedThroughputExceeded');
          },
        },
      },
    });
    const result = await processEmailBatch(deps, [message('1', 'a@example.org')]);
    expect(transport.send).not.toHaveBeenCalled();
    expect(result).toMatchObject({ sent: 0, deferred: 1 });
  });
});

describe('pacing', () => {
  it('takes a turn at the pacer for each message: the recipient and each cc copy', async () => {
    const pacer = new SendPacer(1_000, { now: () => 0, sleep: async () => undefined });
    const take = vi.spyOn(pacer, 'take');
    const { deps, message, transport } = consumer({
      content: { cc: ['boss@example.org', 'board@example.org'] },
      overrides: { pacer },
    });

    await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(take.mock.calls).toEqual([[1], [1], [1]]);
    expect(transport.send).toHaveBeenCalledTimes(3);
  });
});

describe('every reader its own message', () => {
  const SECRET = 'test-link-secret';
  const links = {
    unsubscribe: {
      secret: { versions: async () => ({ current: SECRET }) },
      url: 'https://api.example.org/v1/unsubscribe',
      mailto: 'out@example.org',
    },
  };
  const tokenOf = (url: string | undefined) => new URL(url ?? 'https://x').searchParams.get('token') ?? '';

  it('sends each cc copy as its own message to its reader, copies first, each with the same To and Cc and its own link', async () => {
    const { deps, deliveries, jobId, message, transport } = consumer({
      total: 1,
      content: { cc: ['boss@example.org', 'board@example.org'] },
      overrides: links,
    });

    const result = await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(result.sent).toBe(1);
    const sent = vi.mocked(transport.send).mock.calls.map(([email]) => email);
    expect(sent.map((email) => email.reader)).toEqual([
      'boss@example.org',
      'board@example.org',
      'a@example.org',
    ]);
    for (const email of sent) {
      expect(email).toMatchObject({ to: 'a@example.org', cc: ['boss@example.org', 'board@example.org'] });
      // The link in the header and in the footer unsubscribes this reader, and only this reader.
      // A copy's link also names the recipient whose email it copies: its ledger entry notes the unsubscribe.
      expect(verifyUnsubscribeToken({ current: SECRET }, tokenOf(email.unsubscribe?.url))).toEqual({
        email: email.reader,
        jobId,
        apiKeyId: undefined,
        recipient: email.reader === 'a@example.org' ? undefined : 'a@example.org',
      });
      expect(email.text).toContain(
        `This email was sent to ${email.reader} by Acme Relief, 1 Main St, Springfield.`,
      );
      expect(email.text).toContain(`Unsubscribe: ${email.unsubscribe?.url}`);
    }
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'sent',
      message_id: 'ses-a@example.org',
      copy_ids: { 'boss@example.org': 'ses-boss@example.org', 'board@example.org': 'ses-board@example.org' },
    });
  });

  it('notes a copy SES refuses and still sends the recipient its email', async () => {
    const transport = accepting();
    transport.send.mockImplementation(async (email: RenderedEmail) => {
      if (email.reader === 'boss@example.org')
        throw new DeliveryError('rejected', 'SES MessageRejected: Address blacklisted.');
      return { messageId: `ses-${email.reader}` };
    });
    const { deps, deliveries, jobId, message } = consumer({
      total: 1,
      transport,
      content: { cc: ['boss@example.org', 'board@example.org'] },
    });

    const result = await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(result).toMatchObject({ sent: 1, failed: { rejected: 0 } });
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'sent',
      copy_ids: { 'board@example.org': 'ses-board@example.org' },
      copy_errors: { 'boss@example.org': 'SES MessageRejected: Address blacklisted.' },
    });
  });

  it('never sends a copy twice: an email put back halfway sends only what is left on its next attempt', async () => {
    const transport = accepting();
    let throttleBoard = true;
    transport.send.mockImplementation(async (email: RenderedEmail) => {
      if (email.reader === 'board@example.org' && throttleBoard) {
        throttleBoard = false;
        throw new DeliveryError('throttled', 'SES TooManyRequestsException: slow down');
      }
      return { messageId: `ses-${email.reader}` };
    });
    const { deps, deliveries, deferred, jobId, message } = consumer({
      total: 1,
      transport,
      content: { cc: ['boss@example.org', 'board@example.org'] },
    });

    const first = await processEmailBatch(deps, [message('1', 'a@example.org')]);
    expect(first).toMatchObject({ sent: 0, deferred: 1 });
    // Released at once, with the copy that went written on it.
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'sending',
      copy_ids: { 'boss@example.org': 'ses-boss@example.org' },
    });

    const again = deferred[0]?.message;
    if (!again) throw new Error('the email should have been put back');
    const second = await processEmailBatch(deps, [
      { messageId: '2', body: JSON.stringify(again), receiveCount: 1, receiptHandle: 'handle-2' },
    ]);

    expect(second.sent).toBe(1);
    expect(vi.mocked(transport.send).mock.calls.map(([email]) => email.reader)).toEqual([
      'boss@example.org',
      'board@example.org',
      'board@example.org',
      'a@example.org',
    ]);
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'sent',
      copy_ids: { 'boss@example.org': 'ses-boss@example.org', 'board@example.org': 'ses-board@example.org' },
    });
  });

  it("keeps the claim when a copy's message id cannot be written: the copy is not sent again while its lease runs", async () => {
    const { deps, deliveries, deferred, jobId, message, transport } = consumer({
      total: 1,
      content: { cc: ['boss@example.org', 'board@example.org'] },
    });
    vi.spyOn(deliveries, 'handOver').mockRejectedValue(new Error('ProvisionedThroughputExceededException'));

    const first = await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(first).toMatchObject({ sent: 0, deferred: 1 });
    // Not given back: a release would let the next claim send the boss's copy again at once.
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({ status: 'sending', copy_ids: {} });
    vi.mocked(deliveries.handOver).mockRestore();
    const again = deferred[0]?.message;
    if (!again) throw new Error('the email should have been put back');
    const second = await processEmailBatch(deps, [
      { messageId: '2', body: JSON.stringify(again), receiveCount: 1, receiptHandle: 'handle-2' },
    ]);
    expect(second).toMatchObject({ sent: 0 });
    expect(vi.mocked(transport.send).mock.calls.map(([email]) => email.reader)).toEqual(['boss@example.org']);
  });

  it('stops sending an email whose claim was taken over between its copies', async () => {
    const { deps, deliveries, jobId, message, transport } = consumer({
      total: 1,
      content: { cc: ['boss@example.org', 'board@example.org'] },
    });
    vi.spyOn(deliveries, 'handOver').mockRejectedValue(new ClaimLostError(jobId, 'a@example.org'));

    const result = await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(result).toMatchObject({ sent: 0, retry: ['1'] });
    expect(vi.mocked(transport.send).mock.calls.map(([email]) => email.reader)).toEqual(['boss@example.org']);
  });

  it('sends each reader one message of a stored job whose cc repeats an address or names the recipient', async () => {
    const { deps, message, transport } = consumer({
      total: 1,
      content: { cc: ['boss@example.org', 'a@example.org', 'boss@example.org'] },
    });

    const result = await processEmailBatch(deps, [message('1', 'a@example.org')]);

    expect(result.sent).toBe(1);
    expect(vi.mocked(transport.send).mock.calls.map(([email]) => email.reader)).toEqual([
      'boss@example.org',
      'a@example.org',
    ]);
  });

  it('gives a cancelled email back to the quota less the copies an earlier attempt sent', async () => {
    const transport = accepting();
    transport.send.mockImplementation(async (email: RenderedEmail) => {
      if (email.reader === 'board@example.org')
        throw new DeliveryError('throttled', 'SES TooManyRequestsException: slow down');
      return { messageId: `ses-${email.reader}` };
    });
    const refund = vi.fn(async () => undefined);
    let cancelled = false;
    const { deps, deliveries, deferred, jobId, message } = consumer({
      total: 1,
      transport,
      cancelled: () => cancelled,
      content: {
        cc: ['boss@example.org', 'board@example.org'],
        quota: { api_key_id: 'key-1', day: '2026-11-28' },
      },
      overrides: { quota: { refund } },
    });
    await processEmailBatch(deps, [message('1', 'a@example.org')]);
    cancelled = true;
    const again = deferred[0]?.message;
    if (!again) throw new Error('the email should have been put back');

    const result = await processEmailBatch(deps, [
      { messageId: '2', body: JSON.stringify(again), receiveCount: 1, receiptHandle: 'handle-2' },
    ]);

    expect(result.cancelled).toBe(1);
    // Charged 3 (the recipient and two copies); the boss's copy went.
    expect(refund).toHaveBeenCalledWith('key-1', '2026-11-28', 2);
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'cancelled',
      copy_ids: { 'boss@example.org': 'ses-boss@example.org' },
    });
  });

  it('renders the HTML part with each value escaped, and the footer in both parts', async () => {
    const { deps, message, transport } = consumer({
      total: 1,
      content: { template: 'Dear {name}', html: '<html><body><p>Dear {name}</p></body></html>' },
      nonprofits: [nonprofit('a@example.org', { name: 'Tom & Jerry <b>' })],
      overrides: links,
    });

    await processEmailBatch(deps, [message('1', 'a@example.org')]);

    const email = vi.mocked(transport.send).mock.calls[0]?.[0];
    expect(email?.text.startsWith('Dear Tom & Jerry <b>\n\n-- \n')).toBe(true);
    expect(email?.html).toMatch(/^<html><body><p>Dear Tom &amp; Jerry &lt;b&gt;<\/p><div style="[^"]+">/);
    expect(email?.html).toContain(
      'This email was sent to a@example.org by Acme Relief, 1 Main St, Springfield.',
    );
    expect(email?.html).toContain(`<a href="${email?.unsubscribe?.url}"`);
    // The footer goes inside the body, before it ends.
    expect(email?.html?.endsWith('</div></body></html>')).toBe(true);
  });
});

describe('recordDeadLetters', () => {
  it('records each dead letter as failed with the number of receives', async () => {
    const { deps, deliveries, jobId, message } = consumer();
    const result = await recordDeadLetters(deps, [message('1', 'a@example.org', { receiveCount: 5 })]);
    expect(result.failed).toEqual({ nonprofitDeleted: 0, rejected: 0, tooLarge: 0, deadLetter: 1 });
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'failed',
      attempts: 5,
      error: expect.stringContaining('dead-letter'),
    });
  });

  it('records a dead letter whose email was handed over as sent', async () => {
    const { deps, deliveries, jobId, message } = consumer();
    const earlier = (await deliveries.claim(jobId, [{ recipient: 'a@example.org', attempts: 4 }])).get(
      'a@example.org',
    );
    if (earlier?.state !== 'claimed') throw new Error('the earlier attempt should have claimed');
    await deliveries.handOver(jobId, 'a@example.org', earlier.token, 'ses-earlier');

    const result = await recordDeadLetters(deps, [message('1', 'a@example.org', { receiveCount: 5 })]);

    expect(result).toMatchObject({ sent: 1, failed: { deadLetter: 0 } });
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({
      status: 'sent',
      message_id: 'ses-earlier',
    });
  });

  it("records a cancelled job's dead letter cancelled, not failed, and gives it back to the quota", async () => {
    const refund = vi.fn(async () => undefined);
    const { deps, deliveries, jobId, message } = consumer({
      content: { cc: ['boss@example.org'], quota: { api_key_id: 'key-1', day: '2026-11-28' } },
      cancelled: () => true,
      overrides: { quota: { refund } },
    });

    const result = await recordDeadLetters(deps, [message('1', 'a@example.org', { receiveCount: 5 })]);

    expect(result).toMatchObject({ cancelled: 1, failed: { deadLetter: 0 } });
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({ status: 'cancelled' });
    // The recipient and its cc copy.
    expect(refund).toHaveBeenCalledWith('key-1', '2026-11-28', 2);
  });

  it('counts and refunds the outcomes that were written when another write of the batch fails, and retries only that one', async () => {
    const refund = vi.fn(async () => undefined);
    const { deps, deliveries, jobId, message } = consumer({
      content: { quota: { api_key_id: 'key-1', day: '2026-11-28' } },
      cancelled: () => true,
      overrides: { quota: { refund } },
    });
    const real = deliveries.record.bind(deliveries);
    vi.spyOn(deliveries, 'record').mockImplementation(async (job, outcomes) => {
      const [first, ...rest] = outcomes;
      const written = await real(job, first ? [first] : []);
      return { ...written, failed: rest, error: new Error('ProvisionedThroughputExceededException') };
    });

    const result = await recordDeadLetters(deps, [
      message('1', 'a@example.org', { receiveCount: 5 }),
      message('2', 'b@example.org', { receiveCount: 5 }),
    ]);

    expect(result).toMatchObject({ cancelled: 1, retry: ['2'] });
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({ status: 'cancelled' });
    expect(refund).toHaveBeenCalledWith('key-1', '2026-11-28', 1);
  });

  it('leaves a dead letter to be retried, unclaimed, when its job cannot be read', async () => {
    const { deps, deliveries, jobId, message } = consumer();
    vi.mocked(deps.jobs.sendingLook).mockRejectedValue(new Error('ProvisionedThroughputExceededException'));
    const result = await recordDeadLetters(deps, [message('1', 'a@example.org', { receiveCount: 5 })]);
    expect(result).toMatchObject({ retry: ['1'], failed: { deadLetter: 0 } });
    expect(deliveries.isFree(jobId, 'a@example.org')).toBe(true);
  });

  it('drops a dead letter of a job that has ended, unclaimed', async () => {
    const { deps, deliveries, jobId, message } = consumer({ ended: () => true });
    const result = await recordDeadLetters(deps, [message('1', 'a@example.org', { receiveCount: 5 })]);
    expect(result).toMatchObject({ retry: [], duplicates: 1, failed: { deadLetter: 0 } });
    expect(deliveries.isFree(jobId, 'a@example.org')).toBe(true);
  });

  it('leaves a dead letter whose claim a consumer still holds to be retried, not failed', async () => {
    const { deps, deliveries, jobId, message } = consumer();
    await deliveries.claim(jobId, [{ recipient: 'a@example.org', attempts: 4 }]);
    const result = await recordDeadLetters(deps, [message('1', 'a@example.org', { receiveCount: 5 })]);
    expect(result).toMatchObject({ retry: ['1'], failed: { deadLetter: 0 } });
    expect(deliveries.get(jobId, 'a@example.org')?.status).toBe('sending');
  });
});

describe('processEmailBatch with chunk messages', () => {
  const people = ['a@example.org', 'b@example.org', 'c@example.org'];
  const registry = people.map((email) => nonprofit(email));

  it('sends each recipient of a chunk once, under one claim, and a duplicate of the message sends nothing', async () => {
    const { deps, deliveries, jobId, chunk, transport, advance } = consumer({
      nonprofits: registry,
      total: 3,
    });
    const claimChunk = vi.spyOn(deliveries, 'claimChunk');
    const claim = vi.spyOn(deliveries, 'claim');

    const first = await processEmailBatch(deps, [chunk('m1', 0, people)]);
    expect(first).toMatchObject({ sent: 3, retry: [], duplicates: 0 });
    expect(claimChunk).toHaveBeenCalledTimes(1);
    expect(claim).not.toHaveBeenCalled();
    for (const person of people) expect(deliveries.get(jobId, person)).toMatchObject({ status: 'sent' });

    // SQS hands the message over again: the chunk is held until its lease ends, then every
    // recipient is found done.
    const held = await processEmailBatch(deps, [chunk('m1', 0, people, { receiveCount: 2 })]);
    expect(held).toMatchObject({ sent: 0, retry: ['m1'] });
    expect(deps.queue.returnAfter).toHaveBeenCalledWith('handle-m1', LEASE_MS / 1000 + 1);
    advance(LEASE_MS + 1);
    const again = await processEmailBatch(deps, [chunk('m1', 0, people, { receiveCount: 3 })]);
    expect(again).toMatchObject({ sent: 0, duplicates: 3, retry: [] });
    expect(transport.send).toHaveBeenCalledTimes(3);
  });

  it('renders a chunk from the values it carries and reads no registry; reads it for a chunk without them', async () => {
    const transport = accepting();
    const { deps, chunk } = consumer({
      transport,
      // The registry has moved on since acceptance: renamed, and one deleted.
      nonprofits: [nonprofit('a@example.org', { name: 'Renamed' })],
      total: 3,
    });
    const getMany = vi.spyOn(deps.nonprofits, 'getMany');
    const carried = people.map((_email, n) => ({ name: `Accepted ${n}`, address: `${n} Main St` }));

    const result = await processEmailBatch(deps, [
      {
        ...chunk('m1', 0, people),
        body: JSON.stringify({ ...JSON.parse(chunk('m1', 0, people).body), nonprofits: carried }),
      },
    ]);

    expect(result).toMatchObject({ sent: 3, failed: { nonprofitDeleted: 0 } });
    expect(getMany).not.toHaveBeenCalled();
    // Each recipient with its own values, not a neighbour's.
    const textTo = new Map(
      transport.send.mock.calls.map(([email]) => [
        (email as RenderedEmail).to,
        (email as RenderedEmail).text,
      ]),
    );
    for (const [n, person] of people.entries())
      expect(textTo.get(person)?.startsWith(`Hi Accepted ${n}`)).toBe(true);

    const other = consumer({ nonprofits: [nonprofit('a@example.org', { name: 'Renamed' })], total: 3 });
    const read = vi.spyOn(other.deps.nonprofits, 'getMany');
    expect(await processEmailBatch(other.deps, [other.chunk('m1', 0, people)])).toMatchObject({
      sent: 1,
      failed: { nonprofitDeleted: 2 },
    });
    expect(read).toHaveBeenCalledWith(people, { consistent: false });
  });

  it('drops a chunk whose values do not match its recipients one for one, as any malformed message', async () => {
    const { deps, chunk, transport } = consumer({ nonprofits: registry, total: 3 });
    const body = {
      ...JSON.parse(chunk('m1', 0, people).body),
      nonprofits: [{ name: 'Only one', address: 'A' }],
    };
    const result = await processEmailBatch(deps, [{ ...chunk('m1', 0, people), body: JSON.stringify(body) }]);
    expect(result).toMatchObject({ sent: 0, retry: [] });
    expect(transport.send).not.toHaveBeenCalled();
  });

  it('takes a chunk over after its lease: sends only what has no outcome, and no copy twice', async () => {
    const transport = accepting();
    const { deps, deliveries, jobId, chunk, advance } = consumer({
      transport,
      nonprofits: registry,
      total: 3,
      content: { cc: ['board@example.org'] },
    });
    // A consumer claimed the chunk, recorded a, sent b's copy, and died.
    const dead = await deliveries.claimChunk(jobId, 0, people);
    if (dead.state !== 'claimed') throw new Error('expected a claim');
    await deliveries.recordCopies(jobId, 'b@example.org', { 'board@example.org': 'ses-copy-b' });
    await deliveries.record(jobId, [
      {
        recipient: 'a@example.org',
        status: 'sent',
        messageId: 'ses-a',
        cc: ['board@example.org'],
        attempts: 1,
        claimToken: dead.token,
        chunk: 0,
      },
    ]);

    // Its message comes back while the lease holds, then after.
    expect(await processEmailBatch(deps, [chunk('m1', 0, people, { receiveCount: 2 })])).toMatchObject({
      retry: ['m1'],
    });
    expect(transport.send).not.toHaveBeenCalled();
    advance(LEASE_MS + 1);
    const result = await processEmailBatch(deps, [chunk('m1', 0, people, { receiveCount: 3 })]);

    expect(result).toMatchObject({ sent: 2, duplicates: 1, retry: [] });
    const sent = transport.send.mock.calls.map(
      ([email]) => `${(email as RenderedEmail).to}>${(email as RenderedEmail).reader}`,
    );
    // b's copy went before: only b's own email; c gets its copy and its own.
    expect(sent.sort()).toEqual([
      'b@example.org>b@example.org',
      'c@example.org>board@example.org',
      'c@example.org>c@example.org',
    ]);
    expect(deliveries.get(jobId, 'b@example.org')).toMatchObject({
      status: 'sent',
      copy_ids: { 'board@example.org': 'ses-copy-b' },
    });
    // A second outcome for a changes nothing: the first stands.
    expect(deliveries.get(jobId, 'a@example.org')).toMatchObject({ status: 'sent', message_id: 'ses-a' });
  });

  it("leaves a recipient a retry queued again to the retry's own message", async () => {
    const { deps, deliveries, jobId, chunk, transport, message, advance } = consumer({
      nonprofits: registry,
      total: 3,
    });
    // The chunk went out; then a retry queued b again; then the chunk's message came back (a stray copy).
    await processEmailBatch(deps, [chunk('m1', 0, people)]);
    await deliveries.requeue(jobId, 'b@example.org');
    advance(LEASE_MS + 1);
    const stray = await processEmailBatch(deps, [chunk('m1', 0, people, { receiveCount: 2 })]);
    expect(stray).toMatchObject({ sent: 0, duplicates: 3 });
    // The retry's message claims b on its own and sends it.
    expect(await processEmailBatch(deps, [message('r1', 'b@example.org')])).toMatchObject({ sent: 1 });
    expect(transport.send).toHaveBeenCalledTimes(4);
  });

  it('puts the recipients that must wait back as one message of the chunk, and gives the chunk back', async () => {
    let throttled = new Set(['b@example.org', 'c@example.org']);
    const transport: EmailTransport & { send: ReturnType<typeof vi.fn> } = {
      name: 'throttling',
      send: vi.fn(async (email: RenderedEmail) => {
        if (throttled.has(email.to))
          throw new DeliveryError('throttled', 'SES: Maximum sending rate exceeded');
        return { messageId: `ses-${email.reader}` };
      }),
    };
    const { deps, deliveries, jobId, chunk, deferred } = consumer({
      nonprofits: registry,
      total: 3,
      transport,
    });
    const releaseChunk = vi.spyOn(deliveries, 'releaseChunk');

    const carried = people.map((email) => ({ name: `Then ${email}`, address: 'Then' }));
    const sent = chunk('m1', 4, people, { deferrals: 1 });
    const result = await processEmailBatch(deps, [
      { ...sent, body: JSON.stringify({ ...JSON.parse(sent.body), nonprofits: carried }) },
    ]);

    expect(result).toMatchObject({ sent: 1, deferred: 2, retry: [] });
    expect(deferred).toHaveLength(1);
    // The values travel on with the recipients that wait, in their order.
    expect(deferred[0]?.message).toEqual({
      job_id: jobId,
      chunk: 4,
      recipients: ['b@example.org', 'c@example.org'],
      nonprofits: [carried[1], carried[2]],
      deferrals: 2,
    });
    // Doubled from the base wait: the message's second deferral.
    expect(deferred[0]?.delaySeconds).toBeGreaterThanOrEqual(WAITS.throttledSeconds * 2 * 0.8);
    expect(releaseChunk).toHaveBeenCalledTimes(1);

    // Given back, so the deferred message takes the chunk at once and sends only what waited.
    throttled = new Set();
    const body = JSON.stringify(deferred[0]?.message);
    const next = await processEmailBatch(deps, [
      { messageId: 'm2', body, receiveCount: 1, receiptHandle: 'handle-m2' },
    ]);
    expect(next).toMatchObject({ sent: 2, duplicates: 0, retry: [] });
    for (const person of people) expect(deliveries.get(jobId, person)).toMatchObject({ status: 'sent' });
  });

  it('keeps the chunk claimed when SES answered one of its emails with a server error', async () => {
    const transport: EmailTransport & { send: ReturnType<typeof vi.fn> } = {
      name: 'failing',
      send: vi.fn(async (email: RenderedEmail) => {
        if (email.to === 'b@example.org') throw new DeliveryError('unavailable', 'SES InternalFailure: 500');
        return { messageId: `ses-${email.reader}` };
      }),
    };
    const { deps, deliveries, chunk, deferred } = consumer({ nonprofits: registry, total: 3, transport });
    const releaseChunk = vi.spyOn(deliveries, 'releaseChunk');

    const result = await processEmailBatch(deps, [chunk('m1', 0, people)]);

    expect(result).toMatchObject({ sent: 2, deferred: 1, retry: [] });
    expect(deferred.flatMap(({ message: waiting }) => recipientsOf(waiting))).toEqual(['b@example.org']);
    // SES may have taken b's email: the claim lapses with its lease, never given back early.
    expect(releaseChunk).not.toHaveBeenCalled();
  });

  it('sends the whole message back when one of its outcomes cannot be written', async () => {
    const { deps, deliveries, chunk, deferred } = consumer({ nonprofits: registry, total: 3 });
    const real = deliveries.record.bind(deliveries);
    vi.spyOn(deliveries, 'record').mockImplementation(async (jobId, outcomes) => {
      if (outcomes.some(({ recipient }) => recipient === 'c@example.org'))
        return { recorded: [], duplicates: 0, failed: [...outcomes], error: new Error('injected') };
      return real(jobId, outcomes);
    });

    const result = await processEmailBatch(deps, [chunk('m1', 0, people)]);

    // The message goes back whole, counted by the recipients it carries.
    expect(result).toMatchObject({ sent: 2, retry: ['m1'], retriedRecipients: 3 });
    expect(deferred).toEqual([]);
  });

  it('puts a whole chunk back as one message while sending is paused, its claim given back', async () => {
    const transport = refusing(() => new DeliveryError('paused', 'SES SendingPausedException: paused'));
    const { deps, deliveries, jobId, chunk, deferred } = consumer({
      nonprofits: registry,
      total: 3,
      transport,
    });
    const releaseChunk = vi.spyOn(deliveries, 'releaseChunk');

    const result = await processEmailBatch(deps, [chunk('m1', 2, people)]);

    expect(result).toMatchObject({ paused: true, sent: 0, deferred: 3, retry: [] });
    expect(deferred).toHaveLength(1);
    expect(deferred[0]?.message).toMatchObject({ job_id: jobId, chunk: 2, deferrals: 1 });
    expect(recipientsOf(deferred[0]?.message as EmailMessage).sort()).toEqual(people);
    expect(deferred[0]?.delaySeconds).toBeGreaterThanOrEqual(WAITS.pausedSeconds * 0.8);
    expect(releaseChunk).toHaveBeenCalledWith(jobId, 2, expect.any(String));
  });

  it('puts a chunk back whole when the suppression list cannot be read, and sends none of it', async () => {
    const { deps, chunk, deferred, transport } = consumer({ nonprofits: registry, total: 3 });
    vi.mocked(deps.suppressions.getMany).mockRejectedValue(
      new Error('ProvisionedThroughputExceededException'),
    );

    const result = await processEmailBatch(deps, [chunk('m1', 0, people)]);

    expect(transport.send).not.toHaveBeenCalled();
    expect(result).toMatchObject({ sent: 0, deferred: 3, retry: [] });
    expect(deferred.map(({ message }) => recipientsOf(message).length)).toEqual([3]);
    expect(deferred[0]?.delaySeconds).toBeLessThanOrEqual(60);
  });

  it('sends the chunk message back whole when its waiting recipients cannot be put back', async () => {
    const transport = refusing(() => new DeliveryError('throttled', 'SES: Maximum sending rate exceeded'));
    const { deps, chunk } = consumer({ nonprofits: registry, total: 3, transport });
    vi.mocked(deps.queue.defer).mockRejectedValue(new Error('SQS unavailable'));

    const result = await processEmailBatch(deps, [chunk('m1', 0, people)]);

    expect(result).toMatchObject({ sent: 0, deferred: 0, retry: ['m1'] });
  });
});
