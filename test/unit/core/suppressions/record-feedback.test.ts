import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { FeedbackLedger, FeedbackNoted } from '../../../../lambdas/core/jobs/deliveries';
import type { JobRecord } from '../../../../lambdas/core/jobs/job';
import type { ReceivedMessage } from '../../../../lambdas/core/jobs/process-emails';
import {
  type RecordFeedbackDependencies,
  recordFeedback,
} from '../../../../lambdas/core/suppressions/record-feedback';
import type { Suppression } from '../../../../lambdas/core/suppressions/suppression';

const fixture = (name: string) =>
  readFileSync(new URL(`../../../fixtures/ses-events/${name}.json`, import.meta.url), 'utf8');
const JOB = '3f1c2a9e-8d4b-4c7e-9a61-2b5d0e7f8c13';

/** Fakes of the three stores, with what each was asked. */
function setup(
  options: { jobExists?: boolean; failSuppressions?: boolean; ledgerAnswer?: FeedbackNoted } = {},
) {
  const suppressed: Omit<Suppression, 'suppressed_at'>[] = [];
  const noted: { jobId: string; recipient: string; kind: string; feedbackId: string; messageId: string }[] =
    [];
  const logs: string[] = [];
  const ledger: FeedbackLedger = {
    async recordFeedback(jobId, recipient, report) {
      noted.push({
        jobId,
        recipient,
        kind: report.kind,
        feedbackId: report.feedbackId,
        messageId: 'messageId' in report ? report.messageId : '',
      });
      return options.ledgerAnswer ?? 'recorded';
    },
  };
  const deps: RecordFeedbackDependencies = {
    suppressions: {
      async add(entry) {
        if (options.failSuppressions) throw new Error('DynamoDB is unavailable');
        suppressed.push(entry);
        return { suppression: { ...entry, suppressed_at: '2026-11-28T00:00:00.000Z' }, created: true };
      },
    },
    ledger,
    jobs: {
      async get(jobId) {
        return options.jobExists === false
          ? undefined
          : ({ job_id: jobId, api_key_id: 'key-1' } as JobRecord);
      },
    },
    log: (level, message) => logs.push(`${level} ${message}`),
  };
  return { deps, suppressed, noted, logs };
}

const message = (body: string, id = 'm1'): ReceivedMessage => ({ messageId: id, body, receiveCount: 1 });

describe('recordFeedback', () => {
  it('suppresses a permanently bounced address for the job and key that sent it, and notes the report on its delivery', async () => {
    const { deps, suppressed, noted } = setup();
    const result = await recordFeedback(deps, [message(fixture('bounce-permanent'))]);
    expect(suppressed).toEqual([
      {
        email: 'recipient@example.org',
        reason: 'bounced',
        note: 'Permanent/General: smtp; 550 5.1.1 user unknown',
        job_id: JOB,
        api_key_id: 'key-1',
      },
    ]);
    expect(noted).toEqual([
      {
        jobId: JOB,
        recipient: 'recipient@example.org',
        kind: 'bounce',
        feedbackId: '0100019c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000',
        messageId: '0100019c7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000',
      },
    ]);
    expect(result).toEqual({
      retry: [],
      bounced: 1,
      transientBounces: 0,
      complained: 0,
      suppressed: 1,
      recorded: 1,
      // A hard bounce on this system's email: the reputation guard looks at the window after it.
      reputationReports: 1,
    });
  });

  it('suppresses a complaint as complained', async () => {
    const { deps, suppressed } = setup();
    const result = await recordFeedback(deps, [message(fixture('complaint'))]);
    expect(suppressed).toMatchObject([{ email: 'angry@example.org', reason: 'complained' }]);
    expect(result.complained).toBe(1);
  });

  it('counts a transient bounce and a not-spam complaint on the delivery, suppressing neither', async () => {
    const { deps, suppressed, noted } = setup();
    const result = await recordFeedback(deps, [
      message(fixture('bounce-transient'), 'a'),
      message(fixture('complaint-not-spam'), 'b'),
    ]);
    expect(suppressed).toEqual([]);
    expect(noted.map((entry) => entry.kind).sort()).toEqual(['not_spam', 'transient_bounce']);
    // A spam mark taken back is no complaint: noted on the delivery, counted nowhere.
    expect(result).toMatchObject({
      transientBounces: 1,
      complained: 0,
      suppressed: 0,
      recorded: 2,
      retry: [],
    });
  });

  it("suppresses on another sender's report (no job tag) without touching any job", async () => {
    const { deps, suppressed, noted } = setup();
    await recordFeedback(deps, [message(fixture('identity-notification-bounce'))]);
    expect(suppressed).toEqual([
      { email: 'gone@example.org', reason: 'bounced', note: 'Permanent/NoEmail: 5.1.1' },
    ]);
    expect(noted).toEqual([]);
  });

  it('suppresses still when the tagged job no longer exists', async () => {
    const { deps, suppressed, noted } = setup({ jobExists: false });
    await recordFeedback(deps, [message(fixture('bounce-permanent'))]);
    expect(suppressed).toHaveLength(1);
    expect(suppressed[0]).not.toHaveProperty('job_id');
    expect(noted).toEqual([]);
  });

  it('counts nothing for a report the ledger already has (a redelivered message), and suppresses still', async () => {
    const { deps, suppressed } = setup({ ledgerAnswer: 'duplicate' });
    const result = await recordFeedback(deps, [message(fixture('complaint'))]);
    expect(result).toMatchObject({ recorded: 0, complained: 0, retry: [] });
    expect(suppressed).toMatchObject([{ email: 'angry@example.org', job_id: JOB }]);
  });

  it('reads again later a report on an email whose message id is not on its delivery yet, suppressing nothing now', async () => {
    const { deps, suppressed } = setup({ ledgerAnswer: 'pending' });
    const result = await recordFeedback(deps, [message(fixture('bounce-permanent'), 'early')]);
    expect(result).toMatchObject({ retry: ['early'], bounced: 0, suppressed: 0 });
    expect(suppressed).toEqual([]);
  });

  it("suppresses on a report its tagged job's deliveries do not match, without naming that job or its key", async () => {
    const { deps, suppressed } = setup({ ledgerAnswer: 'unmatched' });
    await recordFeedback(deps, [message(fixture('bounce-permanent'))]);
    expect(suppressed).toEqual([
      {
        email: 'recipient@example.org',
        reason: 'bounced',
        note: 'Permanent/General: smtp; 550 5.1.1 user unknown',
      },
    ]);
  });

  it('ignores other SES events', async () => {
    const { deps, suppressed, noted } = setup();
    const result = await recordFeedback(deps, [message(fixture('delivery'))]);
    expect([suppressed, noted, result.retry]).toEqual([[], [], []]);
  });

  it('sends back a message whose store write failed, and one that is not an SES event (for the dead-letter queue), alone', async () => {
    const { deps, logs } = setup({ failSuppressions: true });
    const result = await recordFeedback(deps, [
      message(fixture('bounce-permanent'), 'store-down'),
      message('{"not": "ses"}', 'garbage'),
      message(fixture('bounce-transient'), 'fine'),
    ]);
    expect(result.retry.sort()).toEqual(['garbage', 'store-down']);
    expect(result.transientBounces).toBe(1);
    expect(logs).toEqual(
      expect.arrayContaining([
        'ERROR Could not record SES feedback; the message is retried',
        'ERROR Feedback message is not an SES event',
      ]),
    );
  });
});
