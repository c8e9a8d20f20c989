import { SQSClient } from '@aws-sdk/client-sqs';
import { BatchGetCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { handler as preview } from '../../../lambdas/api/preview-email';
import { handler as sendEmail } from '../../../lambdas/api/send-email';
import { STORED_LINK } from '../../../lambdas/core/jobs/render-email';
import { PLACEHOLDER_MAX_LENGTH } from '../../../lambdas/core/nonprofits/nonprofit';
import { textFooter } from '../../../lambdas/core/templates/footer';
import { apiEvent, jsonBody, lambdaContext } from '../../support/api-events';
import { answerRegistryReads } from '../../support/registry-mock';

const dynamo = mockClient(DynamoDBDocumentClient);
/** The sender test/support/lambda-env.ts gives the handlers. */
const SENDER = { senderName: 'Acme Relief', senderPostalAddress: '1 Main St, Springfield' };
const sqs = mockClient(SQSClient);

const registry = new Map([
  ['a@example.org', { email: 'a@example.org', name: 'Alpha Aid', address: '1 First St' }],
  ['b@example.org', { email: 'b@example.org', name: 'Beta\r\nBcc: x@evil.example', address: '2 Second St' }],
  ...Array.from({ length: 8 }, (_, n) => {
    const email = `m${n}@example.org`;
    return [email, { email, name: `Member ${n}`, address: `${n} Main St` }] as const;
  }),
]);

beforeEach(() => {
  dynamo.reset();
  sqs.reset();
  // Only reads are answered: any write or enqueue would fail the test (the mocks answer nothing else).
  answerRegistryReads(dynamo, (email) => registry.get(email));
});

const call = (handler: typeof preview, body: unknown) =>
  handler(
    apiEvent({ httpMethod: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) }),
    lambdaContext,
  );

describe('POST /send-email/preview', () => {
  it('renders the first five recipients as they would be sent, with the worst-case size, writing and enqueuing nothing', async () => {
    const emails = [...registry.keys()];
    const result = await call(preview, {
      emails,
      template: 'Dear {name}, at {address}.',
      subject: 'News for {name}',
      cc: ['board@example.org'],
    });
    expect(result.statusCode).toBe(200);
    const body = jsonBody(result);
    expect(body).toMatchObject({ total_emails: 10, max_rendered_email_bytes: 256 * 1024 });
    const previews = body.previews as { to: string; subject: string; body: string; cc: string[] }[];
    expect(previews.map((email) => email.to)).toEqual(emails.slice(0, 5));
    // Every placeholder at its field's longest: far above what these nonprofits render to.
    expect(body.worst_case_bytes).toBeGreaterThan(PLACEHOLDER_MAX_LENGTH.name * 2);
    expect(previews[0]).toEqual({
      to: 'a@example.org',
      cc: ['board@example.org'],
      subject: 'News for Alpha Aid',
      // The footer each reader's message ends with, its link standing for the reader's own.
      body: `Dear Alpha Aid, at 1 First St.${textFooter(SENDER, 'a@example.org', STORED_LINK)}`,
      html: null,
    });
    // A line break stored in a name never reaches the subject (a header), as when sent.
    expect(previews[1]?.subject).toBe('News for Beta  Bcc: x@evil.example');
    expect(dynamo.calls().every((made) => made.args[0] instanceof BatchGetCommand)).toBe(true);
    expect(sqs.calls()).toHaveLength(0);
  });

  it('renders those named in preview_for, and the default subject when there is none', async () => {
    const result = await call(preview, {
      emails: [...registry.keys()],
      template: 'Hi {name}',
      preview_for: ['M7@example.org'],
    });
    expect(jsonBody(result).previews).toEqual([
      {
        to: 'm7@example.org',
        cc: [],
        subject: '(no subject)',
        body: `Hi Member 7${textFooter(SENDER, 'm7@example.org', STORED_LINK)}`,
        html: null,
      },
    ]);
  });

  it.each([
    ['malformed JSON', '{"emails": ['],
    ['no recipients', { emails: [], template: 'Hi' }],
    ['an unknown field', { emails: ['a@example.org'], template: 'Hi', priority: 'high' }],
    ['a duplicate recipient', { emails: ['a@example.org', 'A@example.org'], template: 'Hi' }],
    ['an unknown placeholder', { emails: ['a@example.org'], template: 'Hi {nmae}' }],
    ['a template that is code', { emails: ['a@example.org'], template: '{name.__class__}' }],
    [
      'header injection in the subject',
      { emails: ['a@example.org'], template: 'Hi', subject: 'a\r\nBcc: x@y.z' },
    ],
    [
      'emails that could render too large',
      // Within the 100 KB template limit, over the 256 KB worst case: 600 addresses of 1,500 bytes.
      { emails: ['a@example.org'], template: '{address}'.repeat(600) },
    ],
    [
      'an unregistered recipient',
      { emails: ['a@example.org', 'nobody@example.org', 'none@example.org'], template: 'Hi' },
    ],
  ])('refuses %s exactly as /send-email does', async (_, body) => {
    const [previewed, sent] = [await call(preview, body), await call(sendEmail, body)];
    expect(previewed.statusCode).toBeGreaterThanOrEqual(400);
    expect(previewed.statusCode).toBeLessThan(500);
    expect([previewed.statusCode, jsonBody(previewed)]).toEqual([sent.statusCode, jsonBody(sent)]);
    expect(sqs.calls()).toHaveLength(0);
  });

  it('checks the Idempotency-Key header for its form, as /send-email does', async () => {
    const event = (handler: typeof preview) =>
      handler(
        apiEvent({
          httpMethod: 'POST',
          body: JSON.stringify({ emails: ['a@example.org'], template: 'Hi' }),
          headers: { 'Idempotency-Key': 'has spaces' },
        }),
        lambdaContext,
      );
    const [previewed, sent] = [await event(preview), await event(sendEmail)];
    expect(previewed.statusCode).toBe(400);
    expect(jsonBody(previewed)).toEqual(jsonBody(sent));
  });

  it('never lets a bad preview_for hide the refusals /send-email gives, and renders each named recipient once', async () => {
    const result = await call(preview, {
      emails: ['a@example.org', 'A@example.org'],
      template: 'Hi',
      preview_for: 'a@example.org',
    });
    expect(jsonBody(result).details).toEqual([
      { field: 'emails.1', message: 'Duplicate of emails[0] (a@example.org)' },
    ]);
    const twice = await call(preview, {
      emails: ['a@example.org'],
      template: 'Hi',
      preview_for: ['a@example.org', 'A@example.org'],
    });
    expect((jsonBody(twice).previews as unknown[]).length).toBe(1);
  });

  it('refuses a preview_for that is not among the recipients, or too long, naming each', async () => {
    const result = await call(preview, {
      emails: ['a@example.org'],
      template: 'Hi',
      preview_for: ['a@example.org', 'b@example.org'],
    });
    expect(result.statusCode).toBe(400);
    expect(jsonBody(result).details).toEqual([
      { field: 'preview_for.1', message: "Not one of the job's recipients (b@example.org)" },
    ]);
    const tooMany = await call(preview, {
      emails: ['a@example.org'],
      template: 'Hi',
      preview_for: Array.from({ length: 6 }, () => 'a@example.org'),
    });
    expect(jsonBody(tooMany).details).toContainEqual({
      field: 'preview_for',
      message: 'Must name at most 5 recipients',
    });
  });
});
