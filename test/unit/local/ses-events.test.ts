import type { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseFeedback } from '../../../lambdas/core/suppressions/ses-feedback';
import type { SentEmail } from '../../../local/ses';
import { LocalEventPublishing, simulatedEvents } from '../../../local/ses-events';
import { IntrinsicResolver, resourcesOfType } from '../../../local/template';
import { synthesizeForTests } from '../../support/synth';

const email = (to: string[], overrides: Partial<SentEmail> = {}): SentEmail => ({
  messageId: 'ses-42',
  timestamp: '2026-11-28T10:00:00.000Z',
  from: 'mailer@nonprofit-mailer.localhost',
  to,
  cc: [],
  bcc: [],
  subject: 'Hello',
  configurationSet: 'Set',
  tags: { job_id: '3f1c2a9e-8d4b-4c7e-9a61-2b5d0e7f8c13' },
  ...overrides,
});

describe("the local mailbox simulator's reports", () => {
  it("bounce@, suppressionlist@ and complaint@ (with or without a +label) report what SES's simulator does; others nothing", () => {
    const events = simulatedEvents(
      email(['bounce+one@simulator.amazonses.com', 'member@example.org'], {
        cc: ['Complaint@Simulator.AmazonSES.com', 'suppressionlist@simulator.amazonses.com'],
      }),
    );
    expect(events.map((event) => event.eventType)).toEqual(['Bounce', 'Bounce', 'Complaint']);
    const reports = events.map((event) => parseFeedback(JSON.stringify(event)));
    expect(reports).toMatchObject([
      { kind: 'bounce', recipients: ['bounce+one@simulator.amazonses.com'], messageId: 'ses-42' },
      { kind: 'bounce', recipients: ['suppressionlist@simulator.amazonses.com'] },
      { kind: 'complaint', recipients: ['complaint@simulator.amazonses.com'], detail: 'Complaint/abuse' },
    ]);
    // The consumer finds the job from the email's tag, as with SES's event publishing.
    for (const report of reports) expect(report?.jobId).toBe('3f1c2a9e-8d4b-4c7e-9a61-2b5d0e7f8c13');
    expect(simulatedEvents(email(['success@simulator.amazonses.com', 'member@example.org']))).toEqual([]);
  });
});

describe('event publishing read from the synthesized template', () => {
  const { template } = synthesizeForTests();
  const resolver = new IntrinsicResolver(template);
  // As createQueues registers them.
  const queues = resourcesOfType(template, 'AWS::SQS::Queue').map(([logicalId]) => {
    const queue = {
      arn: `arn:aws:sqs:us-east-1:000000000000:${logicalId}`,
      url: `http://sqs.local/${logicalId}`,
    };
    resolver.register(logicalId, { ref: queue.url, attributes: { Arn: queue.arn } });
    return queue;
  });
  const sent: SendMessageCommand['input'][] = [];
  const sqs = {
    send: async (command: SendMessageCommand) => sent.push(command.input),
  } as unknown as SQSClient;
  const publishing = new LocalEventPublishing(template, resolver, { sqs, queues, log: () => {} });
  const [setId] = resourcesOfType(template, 'AWS::SES::ConfigurationSet')[0] ?? [''];

  beforeEach(() => {
    sent.length = 0;
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  it("knows the stack's configuration set, and the one queue subscribed to its bounces and complaints", () => {
    expect(publishing.configurationSets()).toEqual([setId]);
    expect(publishing.queueUrls()).toEqual([
      expect.stringMatching(/^http:\/\/sqs\.local\/SesFeedbackEvents/),
    ]);
  });

  it('puts the raw SES event on that queue a few seconds after the send', async () => {
    publishing.sent(email(['bounce@simulator.amazonses.com'], { configurationSet: setId }));
    expect(sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.QueueUrl).toBe(publishing.queueUrls()[0]);
    expect(parseFeedback(String(sent[0]?.MessageBody))).toMatchObject({
      kind: 'bounce',
      messageId: 'ses-42',
    });
  });

  it('publishes nothing for an email sent without the set, or once stopped', async () => {
    publishing.sent(email(['bounce@simulator.amazonses.com'], { configurationSet: undefined }));
    publishing.sent(email(['bounce@simulator.amazonses.com'], { configurationSet: setId }));
    publishing.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sent).toEqual([]);
  });
});
