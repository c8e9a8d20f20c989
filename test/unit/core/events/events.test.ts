import { describe, expect, it } from 'vitest';
import {
  DETAIL_TYPES,
  emailFeedback,
  jobAccepted,
  jobEnded,
  type OutboxEvent,
  recipientUnsubscribed,
  sendingPaused,
  sendingResumed,
  withJobCounts,
} from '../../../../lambdas/core/events/events';
import { type BusEntry, type EventBus, publishEvents } from '../../../../lambdas/core/events/publish';
import type { JobRecord } from '../../../../lambdas/core/jobs/job';
import { expectPublishedShape } from '../../../support/events';

const JOB_ID = '0b0c8a57-8d3c-4b8e-9a43-4c1a3b7e9f10';
const job: JobRecord = {
  job_id: JOB_ID,
  api_key_id: 'key-1',
  status: 'completed',
  total_emails: 5,
  sent: 3,
  failed: 1,
  suppressed: 1,
  cancelled: 0,
  created_at: '2026-12-04T10:00:00.000Z',
  updated_at: '2026-12-04T10:01:00.000Z',
  completed_at: '2026-12-04T10:01:00.000Z',
} as JobRecord;
const report = {
  feedbackId: 'feedback-1',
  messageId: 'ses-1',
  detail: 'Permanent/General: 550 user unknown',
  at: '2026-12-04T10:02:00.000Z',
};

/** One event of every detail-type, as the writers build them (a job's end with its counts filled in). */
function everyKind(): OutboxEvent[] {
  const window = { sent: 600, bounced: 20, complained: 0, bounce_rate: 0.033, complaint_rate: 0 };
  return [
    jobAccepted({ ...job, status: 'queued' }),
    withJobCounts(
      jobEnded({ job_id: JOB_ID, status: 'completed', completed_at: job.completed_at as string }),
      job,
    ),
    withJobCounts(
      jobEnded({ job_id: JOB_ID, status: 'cancelled', completed_at: job.completed_at as string }),
      { ...job, status: 'cancelled', cancelled: 2, sent: 1 },
    ),
    emailFeedback(JOB_ID, 'jane@example.org', { ...report, kind: 'bounce' }) as OutboxEvent,
    emailFeedback(JOB_ID, 'jane@example.org', { ...report, kind: 'complaint' }) as OutboxEvent,
    recipientUnsubscribed({
      email: 'jane@example.org',
      suppressed_at: report.at,
      job_id: JOB_ID,
      api_key_id: 'key-1',
    }),
    sendingPaused({ paused_at: report.at, reason: 'bounce rate 3.3 % reached 2 %', window }),
    sendingResumed({ resumed_at: report.at, resumed_by: 'key-1', resume_reason: 'list cleaned' }),
  ];
}

describe('the events the stack tells', () => {
  it('builds every detail-type in the shape its published schema documents', () => {
    const events = everyKind();
    expect(events.map((event) => event.detail_type)).toEqual([...DETAIL_TYPES]);
    for (const event of events) expectPublishedShape(event.detail_type, event.detail);
  });

  it('names each fact by its natural key: the same fact twice is one event id, a job ended again another', () => {
    expect(jobAccepted({ ...job, status: 'queued' }).event_id).toBe(`job-accepted:${JOB_ID}`);
    expect(emailFeedback(JOB_ID, 'a@example.org', { ...report, kind: 'bounce' })?.event_id).toBe(
      'email-bounced:feedback-1',
    );
    const first = jobEnded({ job_id: JOB_ID, status: 'completed', completed_at: '2026-12-04T10:01:00.000Z' });
    const afterRetry = jobEnded({
      job_id: JOB_ID,
      status: 'completed',
      completed_at: '2026-12-04T11:00:00.000Z',
    });
    expect(first.event_id).not.toBe(afterRetry.event_id);
    expect(first.detail.event_id).toBe(first.event_id);
  });

  it('tells a transient bounce as a bounce of that type, and nothing of a not-spam report', () => {
    expect(
      emailFeedback(JOB_ID, 'a@example.org', { ...report, kind: 'transient_bounce' })?.detail,
    ).toMatchObject({
      bounce_type: 'transient',
    });
    expect(emailFeedback(JOB_ID, 'a@example.org', { ...report, kind: 'not_spam' })).toBeUndefined();
  });
});

/** A bus that refuses the entries a test says, for as many calls as it says. */
class FakeBus implements EventBus {
  readonly taken: BusEntry[] = [];
  calls = 0;
  constructor(private readonly refuse: (entry: BusEntry, call: number) => boolean = () => false) {}
  async put(entries: readonly BusEntry[]): Promise<boolean[]> {
    this.calls++;
    expect(entries.length).toBeLessThanOrEqual(10);
    return entries.map((entry) => {
      const refused = this.refuse(entry, this.calls);
      if (!refused) this.taken.push(entry);
      return !refused;
    });
  }
}

const accepted = (n: number) =>
  jobAccepted({ ...job, job_id: `${JOB_ID.slice(0, -2)}${String(n).padStart(2, '0')}`, status: 'queued' });

describe('publishing the outbox', () => {
  it('puts every event on the bus in order, ten to a call, with the common fields first', async () => {
    const bus = new FakeBus();
    const events = Array.from({ length: 23 }, (_, n) => accepted(n));
    expect(await publishEvents({ bus, jobs: { get: async () => undefined } }, events)).toBe(23);
    expect(bus.calls).toBe(3);
    expect(bus.taken.map((entry) => JSON.parse(entry.detail).event_id)).toEqual(
      events.map((event) => event.event_id),
    );
    expect(Object.keys(JSON.parse(bus.taken[0]?.detail ?? '{}')).slice(0, 3)).toEqual([
      'version',
      'event_id',
      'occurred_at',
    ]);
    expect(bus.taken[0]).toMatchObject({ source: 'nonprofit-mailer', detailType: 'Job Accepted' });
  });

  it("tells a job's end with the job's final counts, read when it is published", async () => {
    const bus = new FakeBus();
    const ended = jobEnded({ job_id: JOB_ID, status: 'completed', completed_at: job.completed_at as string });
    await publishEvents({ bus, jobs: { get: async (id) => (id === JOB_ID ? job : undefined) } }, [ended]);
    const detail = JSON.parse(bus.taken[0]?.detail ?? '{}');
    expect(detail).toMatchObject({ sent: 3, failed: 1, suppressed: 1, total_emails: 5, api_key_id: 'key-1' });
    expectPublishedShape('Job Completed', detail);
  });

  it('tries an entry the bus refused again, and answers how many from the first were published when it keeps refusing', async () => {
    // The third event is throttled on the first call only: all are published, in two calls.
    const once = new FakeBus(
      (entry, call) => call === 1 && JSON.parse(entry.detail).event_id === accepted(2).event_id,
    );
    expect(
      await publishEvents(
        { bus: once, jobs: { get: async () => undefined }, wait: async () => {} },
        [0, 1, 2, 3].map(accepted),
      ),
    ).toBe(4);
    expect(once.calls).toBe(2);

    // The thirteenth (the second call's third) is refused every time: the twelve before it are done.
    const never = new FakeBus((entry) => JSON.parse(entry.detail).event_id === accepted(12).event_id);
    const events = Array.from({ length: 15 }, (_, n) => accepted(n));
    expect(
      await publishEvents({ bus: never, jobs: { get: async () => undefined }, wait: async () => {} }, events),
    ).toBe(12);
  });
});
