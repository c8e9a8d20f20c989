import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  MalformedFeedbackError,
  parseFeedback,
  suppresses,
} from '../../../../lambdas/core/suppressions/ses-feedback';

/** SES event documents written by hand in the shape of AWS's documented examples. */
const fixture = (name: string) =>
  readFileSync(new URL(`../../../fixtures/ses-events/${name}.json`, import.meta.url), 'utf8');

/** A fixture that must parse to feedback. */
function feedbackOf(name: string) {
  const feedback = parseFeedback(fixture(name));
  if (!feedback) throw new Error(`${name} parsed to nothing`);
  return feedback;
}

const JOB = '3f1c2a9e-8d4b-4c7e-9a61-2b5d0e7f8c13';

describe('parseFeedback reads SES event documents', () => {
  it('a permanent bounce: the address lower-cased, the job from its tag, the diagnostic kept; it suppresses', () => {
    const feedback = feedbackOf('bounce-permanent');
    expect(feedback).toEqual({
      kind: 'bounce',
      feedbackId: '0100019c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000',
      messageId: '0100019c7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000',
      jobId: JOB,
      recipients: ['recipient@example.org'],
      detail: 'Permanent/General: smtp; 550 5.1.1 user unknown',
      at: '2026-11-20T10:41:02.669Z',
    });
    expect(suppresses(feedback)).toBe(true);
  });

  it('a transient bounce is counted, never suppressing', () => {
    const feedback = feedbackOf('bounce-transient');
    expect(feedback).toMatchObject({ kind: 'transient_bounce', recipients: ['full@example.org'] });
    expect(feedback.detail).toBe('Transient/MailboxFull: smtp; 452 4.2.2 mailbox full');
    expect(suppresses(feedback)).toBe(false);
  });

  it('a complaint suppresses; a not-spam complaint (the recipient took the spam mark back) does not', () => {
    const complaint = feedbackOf('complaint');
    expect(complaint).toMatchObject({
      kind: 'complaint',
      recipients: ['angry@example.org'],
      detail: 'Complaint/abuse',
      jobId: JOB,
    });
    expect(suppresses(complaint)).toBe(true);
    const notSpam = feedbackOf('complaint-not-spam');
    expect(notSpam).toMatchObject({ kind: 'not_spam', detail: 'Complaint/not-spam' });
    expect(suppresses(notSpam)).toBe(false);
  });

  it("an identity's own notification (notificationType, no tags, a named address): suppresses, no job", () => {
    const feedback = feedbackOf('identity-notification-bounce');
    expect(feedback).toMatchObject({ kind: 'bounce', jobId: undefined, recipients: ['gone@example.org'] });
    expect(feedback.detail).toBe('Permanent/NoEmail: 5.1.1');
    expect(suppresses(feedback)).toBe(true);
  });

  it('the same event inside an SNS notification (a subscription without raw delivery)', () => {
    const envelope = JSON.stringify({
      Type: 'Notification',
      MessageId: 'b4c4ae5e-0a5f-5f52-b1d5-5a9c0e2b7c1d',
      TopicArn: 'arn:aws:sns:us-east-1:123456789012:feedback',
      Message: fixture('complaint'),
    });
    expect(parseFeedback(envelope)).toEqual(parseFeedback(fixture('complaint')));
  });

  it('an event of another type (a configuration set may publish more) is nothing to act on', () => {
    expect(parseFeedback(fixture('delivery'))).toBeUndefined();
  });

  it('ignores a job_id tag that is not a job id', () => {
    const event = JSON.parse(fixture('complaint')) as { mail: { tags: Record<string, string[]> } };
    event.mail.tags.job_id = ['../../etc'];
    expect(parseFeedback(JSON.stringify(event))?.jobId).toBeUndefined();
  });

  it('leaves out reported entries that are no email address, and keeps a timestamp only if it is one', () => {
    const event = JSON.parse(fixture('bounce-permanent')) as {
      bounce: { bouncedRecipients: { emailAddress: string }[]; timestamp: string };
    };
    event.bounce.bouncedRecipients = [
      { emailAddress: ' ' },
      { emailAddress: 'not an address' },
      { emailAddress: `${'x'.repeat(300)}@example.org` },
      { emailAddress: 'Kept <Kept@Example.org>' },
    ];
    event.bounce.timestamp = '<script>';
    const now = new Date('2026-11-28T12:00:00.000Z');
    expect(parseFeedback(JSON.stringify(event), () => now)).toMatchObject({
      recipients: ['kept@example.org'],
      at: '2026-11-28T12:00:00.000Z',
    });
  });

  it.each([
    ['not JSON', '{"eventType": "Bounce"', 'Not JSON'],
    ['no event type', '{"hello": "world"}', 'Not an SES event'],
    [
      'a bounce without recipients',
      JSON.stringify({
        eventType: 'Bounce',
        bounce: { bounceType: 'Permanent', bouncedRecipients: [], feedbackId: 'f' },
        mail: { messageId: 'm' },
      }),
      'bounce.bouncedRecipients',
    ],
    [
      'a complaint without mail',
      JSON.stringify({
        eventType: 'Complaint',
        complaint: { complainedRecipients: [{ emailAddress: 'a@b.org' }], feedbackId: 'f' },
      }),
      'mail',
    ],
  ])('refuses %s, saying what is wrong', (_, body, problem) => {
    expect(() => parseFeedback(body)).toThrow(MalformedFeedbackError);
    expect(() => parseFeedback(body)).toThrow(problem);
  });
});
