import { describe, expect, it } from 'vitest';
import type { DeliveryStatus } from '../../../lambdas/core/jobs/deliveries';
import type { JobRecord } from '../../../lambdas/core/jobs/job';
import { type SweepDependencies, sweepStaleJobs } from '../../../lambdas/core/jobs/sweep';
import type { EmailMessage } from '../../../lambdas/core/queue/email-queue';
import type { QueueDepth } from '../../../lambdas/core/queue/queue-depth';

const NOW = new Date('2026-11-27T12:00:00.000Z');
const RUN_DEADLINE = new Date(NOW.getTime() + 300_000);
const EMPTY: QueueDepth = { visible: 0, inFlight: 0, delayed: 0 };
const LONG_AGO = '2026-11-27T11:50:00.000Z';
const JUST_NOW = '2026-11-27T11:59:30.000Z';
/** Seen recoverable on an earlier run, long enough ago. */
const SEEN_BEFORE = '2026-11-27T11:58:00.000Z';
/** The deployed default (`ledgerCountAfterSeconds`). */
const LEDGER_COUNT_AFTER_MS = 300_000;

const job = (id: string, fields: Partial<JobRecord> = {}): JobRecord => ({
  job_id: id,
  api_key_id: 'key-1',
  status: 'processing',
  total_emails: 3,
  sent: 1,
  failed: 0,
  remaining: 2,
  created_at: '2026-11-27T11:00:00.000Z',
  updated_at: '2026-11-27T11:00:00.000Z',
  request_hash: 'h',
  active: 'yes',
  enqueue_deadline: LONG_AGO,
  recovery_seen_at: SEEN_BEFORE,
  ...fields,
});

function sweeper(options: {
  jobs: JobRecord[];
  emails?: QueueDepth;
  deadLetters?: QueueDepth;
  claim?: boolean;
  /** A job whose recipient list cannot be read. */
  unreadable?: string;
  /** Every recipient already has an outcome. */
  allProcessed?: boolean;
  recipients?: string[];
  states?: Map<string, DeliveryStatus | undefined>;
}) {
  const calls: string[] = [];
  const enqueued: EmailMessage[] = [];
  const claims: { jobId: string; previous: string | undefined; deadline: Date }[] = [];
  const noticed: { jobId: string; at: Date }[] = [];
  const forgotten: string[] = [];
  const counted: { jobId: string; tally: Record<string, number> }[] = [];
  const deps: SweepDependencies = {
    jobs: {
      activeJobs: async () => options.jobs,
      claimReenqueue: async (claimed, deadline) => {
        claims.push({ jobId: claimed.job_id, previous: claimed.enqueue_deadline, deadline });
        return options.claim ?? true;
      },
      noticeRecovery: async (jobId, at) => void noticed.push({ jobId, at }),
      forgetRecovery: async (jobId) => void forgotten.push(jobId),
      countFromLedger: async (counting, tally) => {
        counted.push({ jobId: counting.job_id, tally });
        return true;
      },
    },
    contents: {
      allRecipients: async (jobId) => {
        if (jobId === options.unreadable) throw new Error('injected: throttled');
        return options.recipients ?? ['a@example.org', 'b@example.org', 'c@example.org'];
      },
    },
    deliveries: {
      recipientStates: async () => {
        calls.push('outcomes');
        if (options.states) return options.states;
        return new Map(
          (options.allProcessed
            ? ['a@example.org', 'b@example.org', 'c@example.org']
            : ['a@example.org']
          ).map((recipient) => [recipient, 'sent']),
        );
      },
    },
    queue: { enqueue: async (messages) => void enqueued.push(...messages) },
    gauges: {
      emails: {
        depth: async () => {
          calls.push('queue');
          return options.emails ?? EMPTY;
        },
      },
      deadLetters: { depth: async () => options.deadLetters ?? EMPTY },
    },
    settleMs: 60_000,
    ledgerCountAfterMs: LEDGER_COUNT_AFTER_MS,
    deadline: RUN_DEADLINE,
    now: () => NOW,
  };
  return { run: () => sweepStaleJobs(deps), enqueued, claims, noticed, forgotten, calls, counted };
}

describe('the sweeper reads the queues, not the clock', () => {
  it('enqueues the unsent recipients once the queues were empty on two looks a settling time apart', async () => {
    const { run, enqueued, claims, calls } = sweeper({ jobs: [job('j1')] });
    const result = await run();
    expect(result).toMatchObject({ jobsSwept: 1, reenqueued: 2, queuesEmpty: true });
    // It claims the job from the deadline it read, until its own run's deadline.
    expect(claims).toEqual([{ jobId: 'j1', previous: LONG_AGO, deadline: RUN_DEADLINE }]);
    // In their chunk, under the number it had when the job was accepted.
    expect(enqueued).toEqual([{ job_id: 'j1', chunk: 0, recipients: ['b@example.org', 'c@example.org'] }]);
    // The queues are looked at before the outcomes are read.
    expect(calls).toEqual(['queue', 'outcomes']);
  });

  it('only notes the first sighting of a recoverable job, and acts on a later run', async () => {
    const { run, enqueued, noticed } = sweeper({ jobs: [job('j1', { recovery_seen_at: undefined })] });
    expect(await run()).toMatchObject({ jobsNoticed: 1, jobsSwept: 0 });
    expect(noticed).toEqual([{ jobId: 'j1', at: NOW }]);
    expect(enqueued).toEqual([]);
  });

  it('waits when the first sighting is more recent than the settling time', async () => {
    const { run, enqueued } = sweeper({ jobs: [job('j1', { recovery_seen_at: JUST_NOW })] });
    expect(await run()).toMatchObject({ jobsWaiting: 1, jobsSwept: 0 });
    expect(enqueued).toEqual([]);
  });

  it('enqueues lost recipients in their chunks, and those a retry queued again on their own', async () => {
    const recipients = Array.from({ length: 23 }, (_, n) => `r${String(n).padStart(2, '0')}@example.org`);
    const states = new Map<string, DeliveryStatus | undefined>([
      ...recipients.slice(0, 10).map((recipient) => [recipient, 'sent'] as const),
      ['r10@example.org', 'queued'],
      ['r11@example.org', 'sending'],
      // Copies out, no outcome yet: still its chunk's to send.
      ['r12@example.org', undefined],
      ...recipients.slice(13, 20).map((recipient) => [recipient, 'failed'] as const),
    ]);
    const { run, enqueued } = sweeper({ jobs: [job('j1')], recipients, states });
    expect(await run()).toMatchObject({ reenqueued: 6 });
    expect(enqueued).toEqual([
      { job_id: 'j1', chunk: 1, recipients: ['r12@example.org'] },
      { job_id: 'j1', chunk: 2, recipients: ['r20@example.org', 'r21@example.org', 'r22@example.org'] },
      { job_id: 'j1', recipient: 'r10@example.org' },
      { job_id: 'j1', recipient: 'r11@example.org' },
    ]);
  });

  it('does not count a sighting made before the job was last enqueued', async () => {
    const { run, noticed } = sweeper({
      jobs: [
        job('j1', {
          enqueue_deadline: '2026-11-27T11:57:00.000Z',
          recovery_seen_at: '2026-11-27T11:56:00.000Z',
        }),
      ],
    });
    expect(await run()).toMatchObject({ jobsNoticed: 1, jobsSwept: 0 });
    expect(noticed).toHaveLength(1);
  });

  it.each<[string, Partial<QueueDepth>, Partial<QueueDepth>]>([
    ['messages wait in the queue', { visible: 5 }, {}],
    ['messages are in flight at a consumer', { inFlight: 1 }, {}],
    ['messages are delayed', { delayed: 1 }, {}],
    ['the dead-letter queue still holds messages to record', {}, { visible: 1 }],
  ])('leaves every job alone while %s, however old the job', async (_, emails, deadLetters) => {
    const { run, enqueued, claims, noticed } = sweeper({
      jobs: [job('j1')],
      emails: { ...EMPTY, ...emails },
      deadLetters: { ...EMPTY, ...deadLetters },
    });
    expect(await run()).toMatchObject({ jobsWaiting: 1, jobsSwept: 0, queuesEmpty: false });
    expect(claims).toEqual([]);
    expect(noticed).toEqual([]);
    expect(enqueued).toEqual([]);
  });

  it('waits for a job whose last enqueue is too recent for the queue counts to include it', async () => {
    const { run, enqueued } = sweeper({ jobs: [job('recent', { enqueue_deadline: JUST_NOW }), job('old')] });
    expect(await run()).toMatchObject({ jobsWaiting: 1, jobsSwept: 1 });
    expect(new Set(enqueued.map((message) => message.job_id))).toEqual(new Set(['old']));
  });

  it('takes a job recorded before enqueue deadlines existed as last enqueued at its last update', async () => {
    const { run, enqueued } = sweeper({
      jobs: [job('legacy', { enqueue_deadline: undefined, updated_at: JUST_NOW })],
    });
    expect(await run()).toMatchObject({ jobsWaiting: 1 });
    expect(enqueued).toEqual([]);
  });

  it('recovers the other jobs when one cannot be, and says which and why', async () => {
    const { run, enqueued } = sweeper({ jobs: [job('bad'), job('good')], unreadable: 'bad' });
    expect(await run()).toMatchObject({
      jobsSwept: 1,
      unrecovered: [{ jobId: 'bad', reason: 'injected: throttled' }],
    });
    expect(new Set(enqueued.map((message) => message.job_id))).toEqual(new Set(['good']));
  });

  it('forgets a first sighting when the queues hold messages again, so the next empty look starts over', async () => {
    const { run, forgotten, enqueued } = sweeper({
      jobs: [job('seen'), job('unseen', { recovery_seen_at: undefined })],
      deadLetters: { ...EMPTY, visible: 1 },
    });
    expect(await run()).toMatchObject({ jobsWaiting: 2, queuesEmpty: false });
    expect(forgotten).toEqual(['seen']);
    expect(enqueued).toEqual([]);
  });

  it('ends a running job whose every recipient has an outcome from its ledger, once its counting has stopped', async () => {
    const { run, enqueued, counted } = sweeper({ jobs: [job('drifted')], allProcessed: true });
    expect(await run()).toMatchObject({ jobsSwept: 0, jobsCountedFromLedger: 1, unrecovered: [] });
    expect(counted).toEqual([
      { jobId: 'drifted', tally: { sent: 3, failed: 0, suppressed: 0, cancelled: 0 } },
    ]);
    expect(enqueued).toEqual([]);
  });

  it('reports such a job instead when its ledger does not hold exactly its recipients', async () => {
    const { run, counted } = sweeper({ jobs: [job('short', { total_emails: 4 })], allProcessed: true });
    expect(await run()).toMatchObject({
      jobsCountedFromLedger: 0,
      unrecovered: [{ jobId: 'short', reason: expect.stringContaining('does not match its 4') }],
    });
    expect(counted).toEqual([]);
  });

  it('leaves such a job alone while it was counted on within the ledger wait', async () => {
    const { run, counted } = sweeper({
      jobs: [job('counting', { updated_at: JUST_NOW })],
      allProcessed: true,
    });
    expect(await run()).toMatchObject({ jobsCountedFromLedger: 0, jobsWaiting: 1 });
    expect(counted).toEqual([]);
  });

  it('enqueues nothing when another run claimed the job first', async () => {
    const { run, enqueued } = sweeper({ jobs: [job('j1')], claim: false });
    expect(await run()).toMatchObject({ jobsSwept: 0, reenqueued: 0 });
    expect(enqueued).toEqual([]);
  });
});
