import {
  AccountSuspendedException,
  BadRequestException,
  InternalServiceErrorException,
  LimitExceededException,
  MailFromDomainNotVerifiedException,
  MessageRejected,
  NotFoundException,
  SESv2Client,
  SESv2ServiceException,
  SendEmailCommand,
  SendingPausedException,
  TooManyRequestsException,
} from '@aws-sdk/client-sesv2';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { SesTransport } from '../../../lambdas/core/transport/ses-transport';
import {
  DeliveryError,
  type DeliveryErrorKind,
  type RenderedEmail,
} from '../../../lambdas/core/transport/transport';

const ses = mockClient(SESv2Client);

beforeEach(() => {
  ses.reset();
});

const email: RenderedEmail = {
  to: 'a@example.org',
  cc: ['boss@example.org', 'board@example.org'],
  subject: 'Grüße, Acme',
  body: 'Dear Acme,\r\nthank you. – Ü',
  jobId: '5d1c2a44-9a55-4f4e-8a1e-6a1f1d3c2b10',
};

const transport = (options: { replyTo?: string; configurationSet?: string } = {}) =>
  new SesTransport({
    client: new SESv2Client({ region: 'us-east-1' }),
    fromAddress: 'news@mailer.example',
    ...options,
  });

/** Errors as the SDK throws them: modeled ones by their class, generic ones as the service exception with a name. */
const metadata = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });
const generic = (name: string, httpStatusCode: number) =>
  new SESv2ServiceException({
    name,
    $fault: httpStatusCode >= 500 ? 'server' : 'client',
    message: `${name} happened`,
    ...metadata(httpStatusCode),
  });

describe('SesTransport', () => {
  it('sends simple UTF-8 content from the verified address to the recipient and cc, tagged with the job, and returns the message id', async () => {
    ses.on(SendEmailCommand).resolves({ MessageId: '0100018c-abc' });

    const answer = await transport({ replyTo: 'replies@mailer.example', configurationSet: 'mailer' }).send(
      email,
    );

    expect(answer).toEqual({ messageId: '0100018c-abc' });
    expect(ses).toHaveReceivedCommandTimes(SendEmailCommand, 1);
    expect(ses).toHaveReceivedCommandWith(SendEmailCommand, {
      FromEmailAddress: 'news@mailer.example',
      Destination: { ToAddresses: ['a@example.org'], CcAddresses: ['boss@example.org', 'board@example.org'] },
      ReplyToAddresses: ['replies@mailer.example'],
      ConfigurationSetName: 'mailer',
      Content: {
        Simple: {
          Subject: { Data: 'Grüße, Acme', Charset: 'UTF-8' },
          Body: { Text: { Data: 'Dear Acme,\r\nthank you. – Ü', Charset: 'UTF-8' } },
        },
      },
      EmailTags: [{ Name: 'job_id', Value: email.jobId }],
    });
  });

  it('sets no reply-to nor configuration set when none is configured', async () => {
    ses.on(SendEmailCommand).resolves({ MessageId: 'id' });

    await transport().send(email);

    const input = ses.commandCalls(SendEmailCommand)[0]?.args[0].input;
    expect(input).toBeDefined();
    expect(input).not.toHaveProperty('ConfigurationSetName');
    expect(input).not.toHaveProperty('ReplyToAddresses');
  });

  it('answers a null message id when SES gives none', async () => {
    ses.on(SendEmailCommand).resolves({});
    expect(await transport().send(email)).toEqual({ messageId: null });
  });

  const refusals: { error: Error; kind: DeliveryErrorKind }[] = [
    {
      error: new MessageRejected({ message: 'Email address is not verified.', ...metadata(400) }),
      kind: 'rejected',
    },
    { error: new BadRequestException({ message: 'Bad address', ...metadata(400) }), kind: 'rejected' },
    { error: new TooManyRequestsException({ message: 'x', ...metadata(429) }), kind: 'throttled' },
    { error: new LimitExceededException({ message: 'x', ...metadata(400) }), kind: 'throttled' },
    { error: generic('ThrottlingException', 400), kind: 'throttled' },
    { error: new SendingPausedException({ message: 'x', ...metadata(400) }), kind: 'paused' },
    { error: new AccountSuspendedException({ message: 'x', ...metadata(400) }), kind: 'paused' },
    { error: new MailFromDomainNotVerifiedException({ message: 'x', ...metadata(400) }), kind: 'paused' },
    { error: new NotFoundException({ message: 'x', ...metadata(404) }), kind: 'paused' },
    { error: generic('AccessDeniedException', 403), kind: 'paused' },
    { error: new InternalServiceErrorException({ message: 'x', ...metadata(500) }), kind: 'unavailable' },
    { error: generic('ServiceUnavailable', 503), kind: 'unavailable' },
    { error: generic('InternalFailure', 500), kind: 'unavailable' },
    // A 5xx SES may add later, without a name the table knows.
    { error: generic('SomethingNew', 502), kind: 'unavailable' },
  ];

  it.each(refusals)('classifies $error.name as $kind', async ({ error, kind }) => {
    ses.on(SendEmailCommand).rejects(error);

    const thrown = await transport()
      .send(email)
      .catch((reason: unknown) => reason);

    expect(thrown).toBeInstanceOf(DeliveryError);
    expect(thrown).toMatchObject({ kind, message: expect.stringContaining(error.name) });
  });

  it('keeps the reason SES gave for a rejection, so the recipient is failed with it', async () => {
    ses
      .on(SendEmailCommand)
      .rejects(new MessageRejected({ message: 'Email address is not verified.', ...metadata(400) }));
    await expect(transport().send(email)).rejects.toThrow('Email address is not verified.');
  });

  it('leaves an unknown 4xx as it is: not a refusal it knows', async () => {
    const error = generic('SomethingNew', 400);
    ses.on(SendEmailCommand).rejects(error);
    const thrown = await transport()
      .send(email)
      .catch((reason: unknown) => reason);
    expect(thrown).toBe(error);
  });

  it('re-throws an error without an answer from SES (a network failure) as it is', async () => {
    const error = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    ses.on(SendEmailCommand).rejects(error);
    const thrown = await transport()
      .send(email)
      .catch((reason: unknown) => reason);
    expect(thrown).toBe(error);
    expect(thrown).not.toBeInstanceOf(DeliveryError);
  });
});
