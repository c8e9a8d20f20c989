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
import { simpleParser } from 'mailparser';
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
  reader: 'boss@example.org',
  subject: 'Grüße, Acme',
  text: 'Dear Acme,\nthank you. – Ü',
  html: '<p>Dear Acme &amp; friends,</p>',
  jobId: '5d1c2a44-9a55-4f4e-8a1e-6a1f1d3c2b10',
  unsubscribe: { url: 'https://mail.example/v1/unsubscribe?token=abc.def', mailto: 'out@mailer.example' },
};

/** The raw message of the one SendEmail call, parsed as a mail client would. */
async function sentMessage() {
  const data = ses.commandCalls(SendEmailCommand)[0]?.args[0].input.Content?.Raw?.Data;
  if (!data) throw new Error('No raw message was sent');
  return simpleParser(Buffer.from(data));
}

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
  it('sends one raw message to its reader alone, from the verified address, tagged with the job, and returns the message id', async () => {
    ses.on(SendEmailCommand).resolves({ MessageId: '0100018c-abc' });

    const answer = await transport({ replyTo: 'replies@mailer.example', configurationSet: 'mailer' }).send(
      email,
    );

    expect(answer).toEqual({ messageId: '0100018c-abc' });
    expect(ses).toHaveReceivedCommandTimes(SendEmailCommand, 1);
    expect(ses).toHaveReceivedCommandWith(SendEmailCommand, {
      FromEmailAddress: 'news@mailer.example',
      // The envelope: only this reader gets this copy, whatever its To and Cc headers show.
      Destination: { ToAddresses: ['boss@example.org'] },
      ConfigurationSetName: 'mailer',
      EmailTags: [{ Name: 'job_id', Value: email.jobId }],
    });
  });

  it("shows every reader the same To and Cc, the reply-to, the UTF-8 subject, both parts and the reader's unsubscribe headers", async () => {
    ses.on(SendEmailCommand).resolves({ MessageId: 'id' });

    await transport({ replyTo: 'replies@mailer.example' }).send(email);

    const message = await sentMessage();
    expect(message.from?.text).toBe('news@mailer.example');
    expect(message.to).toMatchObject({ text: 'a@example.org' });
    expect(message.cc).toMatchObject({ text: 'boss@example.org, board@example.org' });
    expect(message.replyTo?.text).toBe('replies@mailer.example');
    expect(message.subject).toBe('Grüße, Acme');
    expect(message.text).toBe('Dear Acme,\nthank you. – Ü');
    expect(message.html).toBe('<p>Dear Acme &amp; friends,</p>');
    expect(message.headers.get('content-type')).toMatchObject({ value: 'multipart/alternative' });
    const headerLine = (name: string) =>
      message.headerLines.find(({ key }) => key === name)?.line.replace(/\r?\n[ \t]/g, ' ');
    expect(headerLine('list-unsubscribe')).toBe(
      'List-Unsubscribe: <https://mail.example/v1/unsubscribe?token=abc.def>, <mailto:out@mailer.example?subject=unsubscribe>',
    );
    expect(headerLine('list-unsubscribe-post')).toBe('List-Unsubscribe-Post: List-Unsubscribe=One-Click');
  });

  it('sends a text-only message when the email has no HTML part, and no unsubscribe headers without a link', async () => {
    ses.on(SendEmailCommand).resolves({ MessageId: 'id' });
    const { html: _html, unsubscribe: _unsubscribe, ...textOnly } = email;

    await transport().send({ ...textOnly, cc: [], reader: 'a@example.org' });

    const message = await sentMessage();
    expect(message.headers.get('content-type')).toMatchObject({ value: 'text/plain' });
    expect(message.html).toBe(false);
    expect(message.cc).toBeUndefined();
    expect(message.headers.has('list-unsubscribe')).toBe(false);
    expect(ses.commandCalls(SendEmailCommand)[0]?.args[0].input.Destination).toEqual({
      ToAddresses: ['a@example.org'],
    });
  });

  it('sets no configuration set nor reply-to when none is configured', async () => {
    ses.on(SendEmailCommand).resolves({ MessageId: 'id' });

    await transport().send(email);

    const input = ses.commandCalls(SendEmailCommand)[0]?.args[0].input;
    expect(input).toBeDefined();
    expect(input).not.toHaveProperty('ConfigurationSetName');
    expect((await sentMessage()).replyTo).toBeUndefined();
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
    // A configuration set or account switched off, by the names SES v1 gives it.
    { error: generic('ConfigurationSetSendingPausedException', 400), kind: 'paused' },
    { error: generic('AccountSendingPausedException', 400), kind: 'paused' },
    {
      error: new MessageRejected({ message: 'Sending paused for this account.', ...metadata(400) }),
      kind: 'paused',
    },
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

  const notVerified = (identities: string) =>
    new MessageRejected({
      message: `Email address is not verified. The following identities failed the check in region US-EAST-1: ${identities}`,
      ...metadata(400),
    });
  it.each([
    ['the From address', 'news@mailer.example', 'paused'],
    ['the From domain (its identity pending DNS)', 'mailer.example, news@mailer.example', 'paused'],
    ['only the recipient (the sandbox)', 'boss@example.org', 'rejected'],
    ['a recipient in the same domain as the sender', 'someone@mailer.example', 'rejected'],
  ])('classifies an unverified identity naming %s as %s', async (_, identities, kind) => {
    ses.on(SendEmailCommand).rejects(notVerified(identities));
    const thrown = await transport()
      .send(email)
      .catch((reason: unknown) => reason);
    expect(thrown).toMatchObject({ kind });
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
