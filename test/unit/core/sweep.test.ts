import { describe, expect, it } from 'vitest';
import type { JobRecord } from '../../../lambdas/core/jobs/job';
import { type SweepDependencies, sweepStaleJobs } from '../../../lambdas/core/jobs/sweep';
import type { EmailMessage } from '../../../lambdas/core/queue/email-queue';
import type { QueueDepth } from '../../../lambdas/core/queue/queue-depth';

const NOW = new Date('2026-11-27T12:00:00.000Z');
const EMPTY: QueueDepth = { visible: 0, inFlight: 0, delayed: 0 };
const job = (id: string, enqueueDeadline: string): JobRecord => ({
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
  enqueue_deadline: enqueueDeadline,
});

function sweeper(options: {
  jobs: JobRecord[];
  emails?: QueueDepth;
  deadLetters?: QueueDepth;
  claim?: boolean;
}) {
  const enqueued: EmailMessage[] = [];
  const claims: string[] = [];
  const deps: SweepDependencies = {
    jobs: {
      activeJobs: async () => options.jobs,
      claimReenqueue: async ({ job_id }) => {
        claims.push(job_id);
        return options.claim ?? true;
      },
    },
    contents: { allRecipients: async () => ['a@example.org', 'b@example.org', 'c@example.org'] },
    deliveries: { processedRecipients: async () => new Set(['a@example.org']) },
    queue: { enqueue: async (messages) => void enqueued.push(...messages) },
    gauges: {
      emails: { depth: async () => options.emails ?? EMPTY },
      deadLetters: { depth: async () => options.deadLetters ?? EMPTY },
    },
    settleMs: 60_000,
    deadline: new Date(NOW.getTime() + 300_000),
    now: () => NOW,
  };
  return { run: () => sweepStaleJobs(deps), enqueued, claims };
}

const LONG_AGO = '2026-11-27T11:50:00.000Z';
const JUST_NOW = '2026-11-27T11:59:30.000Z';

describe('the sweeper reads the queues, not the clock', () => {
  it('enqueues the unsent recipients of a job once both queues are empty and its last enqueue has settled', async () => {
    const { run, enqueued, claims } = sweeper({ jobs: [job('j1', LONG_AGO)] });
    const result = await run();
    expect(result).toMatchObject({ jobsSwept: 1, reenqueued: 2, queuesEmpty: true });
    expect(claims).toEqual(['j1']);
    expect(enqueued).toEqual([
      { job_id: 'j1', recipient: 'b@example.org' },
      { job_id: 'j1', recipient: 'c@example.org' },
    ]);
  });

  it.each<[string, Partial<QueueDepth>, Partial<QueueDepth>]>([
    ['messages wait in the queue', { visible: 5 }, {}],
    ['messages are in flight at a consumer', { inFlight: 1 }, {}],
    ['messages are delayed', { delayed: 1 }, {}],
    ['the dead-letter queue still holds messages to record', {}, { visible: 1 }],
  ])('leaves every job alone while %s, however old the job', async (_, emails, deadLetters) => {
    const { run, enqueued, claims } = sweeper({
      jobs: [job('j1', LONG_AGO)],
      emails: { ...EMPTY, ...emails },
      deadLetters: { ...EMPTY, ...deadLetters },
    });
    expect(await run()).toMatchObject({ jobsWaiting: 1, jobsSwept: 0, queuesEmpty: false });
    expect(claims).toEqual([]);
    expect(enqueued).toEqual([]);
  });

  it('waits for a job whose last enqueue is too recent for the queue counts to include it', async () => {
    const { run, enqueued } = sweeper({ jobs: [job('recent', JUST_NOW), job('old', LONG_AGO)] });
    expect(await run()).toMatchObject({ jobsWaiting: 1, jobsSwept: 1 });
    expect(new Set(enqueued.map((message) => message.job_id))).toEqual(new Set(['old']));
  });

  it('enqueues nothing when another run claimed the job first', async () => {
    const { run, enqueued } = sweeper({ jobs: [job('j1', LONG_AGO)], claim: false });
    expect(await run()).toMatchObject({ jobsSwept: 0, reenqueued: 0 });
    expect(enqueued).toEqual([]);
  });
});
