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
} from '../../../../lambdas/core/events/events';
import {
  type BusEntry,
  type EntryResult,
  type EventBus,
  publishEvents,
} from '../../../../lambdas/core/events/publish';
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
const COUNTS = { sent: 3, failed: 1, suppressed: 1, cancelled: 0 };
const report = {
  feedbackId: 'feedback-1',
  messageId: 'ses-1',
  detail: 'Permanent/General: 550 user unknown',
  at: '2026-12-04T10:02:00.000Z',
};

/** One event of every detail-type, as the writers build them. */
function everyKind(): OutboxEvent[] {
  const window = { sent: 600, bounced: 20, complained: 0, bounce_rate: 0.033, complaint_rate: 0 };
  return [
    jobAccepted({ ...job, status: 'queued' }),
    jobEnded({ job, status: 'completed', completed_at: job.completed_at as string, counts: COUNTS }),
    jobEnded({
      job,
      status: 'cancelled',
      completed_at: job.completed_at as string,
      counts: { ...COUNTS, cancelled: 2, sent: 1 },
    }),
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
      'email-bounced:feedback-1:a@example.org',
    );
    const ended = (at: string) => jobEnded({ job, status: 'completed', completed_at: at, counts: COUNTS });
    const first = ended('2026-12-04T10:01:00.000Z');
    expect(first.event_id).not.toBe(ended('2026-12-04T11:00:00.000Z').event_id);
    expect(first.detail.event_id).toBe(first.event_id);
    expect(first.detail).toMatchObject({
      sent: 3,
      failed: 1,
      suppressed: 1,
      total_emails: 5,
      api_key_id: 'key-1',
    });
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

/** A bus that refuses the entries a test says (with the error code it says), for as many calls as it says. */
class FakeBus implements EventBus {
  readonly taken: BusEntry[] = [];
  calls = 0;
  constructor(private readonly refuse: (entry: BusEntry, call: number) => string | false = () => false) {}
  async put(entries: readonly BusEntry[]): Promise<EntryResult[]> {
    this.calls++;
    expect(entries.length).toBeLessThanOrEqual(10);
    return entries.map((entry) => {
      const code = this.refuse(entry, this.calls);
      if (code) return { taken: false, code };
      this.taken.push(entry);
      return { taken: true };
    });
  }
}

const accepted = (n: number) =>
  jobAccepted({ ...job, job_id: `${JOB_ID.slice(0, -2)}${String(n).padStart(2, '0')}`, status: 'queued' });
const idOf = (entry: BusEntry) => JSON.parse(entry.detail).event_id;
const noWait = async () => {};

describe('publishing the outbox', () => {
  it('puts every event on the bus, ten to a call, with the common fields first', async () => {
    const bus = new FakeBus();
    const events = Array.from({ length: 23 }, (_, n) => accepted(n));
    expect(await publishEvents({ bus }, events)).toEqual({ done: 23, dropped: [] });
    expect(bus.calls).toBe(3);
    expect(bus.taken.map(idOf)).toEqual(events.map((event) => event.event_id));
    expect(Object.keys(JSON.parse(bus.taken[0]?.detail ?? '{}')).slice(0, 3)).toEqual([
      'version',
      'event_id',
      'occurred_at',
    ]);
    expect(bus.taken[0]).toMatchObject({ source: 'nonprofit-mailer', detailType: 'Job Accepted' });
    expectPublishedShape('Job Accepted', JSON.parse(bus.taken[0]?.detail ?? '{}'));
  });

  it('tries an entry throttled again, and answers how many from the first are done when it keeps being refused', async () => {
    // The third event is throttled on the first call only: all are published, in two calls.
    const once = new FakeBus(
      (entry, call) => call === 1 && idOf(entry) === accepted(2).event_id && 'ThrottlingException',
    );
    expect(await publishEvents({ bus: once, wait: noWait }, [0, 1, 2, 3].map(accepted))).toEqual({
      done: 4,
      dropped: [],
    });
    expect(once.calls).toBe(2);

    // The thirteenth (the second call's third) is refused every time: the twelve before it are done.
    const never = new FakeBus((entry) => idOf(entry) === accepted(12).event_id && 'InternalFailure');
    const events = Array.from({ length: 15 }, (_, n) => accepted(n));
    expect((await publishEvents({ bus: never, wait: noWait }, events)).done).toBe(12);
  });

  it('drops, naming it, an event the bus refuses for good, and goes on with the rest', async () => {
    const bus = new FakeBus((entry) => idOf(entry) === accepted(1).event_id && 'MalformedDetail');
    const result = await publishEvents({ bus, wait: noWait }, [0, 1, 2].map(accepted));
    expect(result).toEqual({
      done: 3,
      dropped: [{ event_id: accepted(1).event_id, code: 'MalformedDetail' }],
    });
    expect(bus.taken.map(idOf)).toEqual([accepted(0).event_id, accepted(2).event_id]);
  });

  it('stops at a call that fails outright, or when the invocation has no time left, with what is done', async () => {
    const failing: EventBus = {
      put: async () => {
        throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      },
    };
    expect(await publishEvents({ bus: failing }, [0, 1].map(accepted))).toEqual({ done: 0, dropped: [] });
    const bus = new FakeBus();
    let calls = 0;
    const result = await publishEvents(
      { bus, timeLeft: () => calls++ < 1 },
      Array.from({ length: 15 }, (_, n) => accepted(n)),
    );
    expect(result.done).toBe(10);
  });
});
