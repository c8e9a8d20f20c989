import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import {
  BatchGetCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { handler } from '../../../lambdas/api/send-email';
import { PLACEHOLDER_MAX_LENGTH } from '../../../lambdas/core/nonprofits/nonprofit';
import { logger } from '../../../lambdas/core/observability/telemetry';
import { erasedKeyWith } from '../../../lambdas/core/people/address-keys';
import { worstCaseFooterBytes } from '../../../lambdas/core/templates/footer';
import { apiEvent, jsonBody, lambdaContext } from '../../support/api-events';
import { answerRegistryReads } from '../../support/registry-mock';

const dynamo = mockClient(DynamoDBDocumentClient);
/** The text footer's worst case for the sender test/support/lambda-env.ts gives the handlers. */
const FOOTER_BYTES = worstCaseFooterBytes(
  { senderName: 'Acme Relief', senderPostalAddress: '1 Main St, Springfield' },
  false,
);
const sqs = mockClient(SQSClient);
// The address key, read where a cc comes in (an erased address is stored by its key).
mockClient(SecretsManagerClient)
  .on(GetSecretValueCommand)
  .resolves({ SecretString: 'k'.repeat(64) });

const registered = new Set(['a@example.org', 'b@example.org', 'c@example.org']);

beforeEach(() => {
  dynamo.reset();
  sqs.reset();
  answerRegistryReads(dynamo, (email) =>
    registered.has(email) ? { email, name: 'N', address: 'A' } : undefined,
  );
  dynamo.on(GetCommand).resolves({});
  dynamo.on(PutCommand).resolves({});
  dynamo.on(TransactWriteCommand).resolves({});
  sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
});

const post = (body: unknown, headers: Record<string, string> = {}) =>
  handler(
    apiEvent({ httpMethod: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers }),
    lambdaContext,
  );

/**
 * Every item written, in order: the content's puts, then the job's, which is a transaction with
 * its `Job Accepted` event in the outbox.
 */
const puts = () =>
  dynamo.calls().flatMap((call) => {
    const [command] = call.args;
    if (command instanceof PutCommand) return [command.input];
    if (command instanceof TransactWriteCommand)
      return (command.input.TransactItems ?? []).flatMap((item) => (item.Put ? [item.Put] : []));
    return [];
  });

/** The job item's write (with its event) fails: DynamoDB throttles it. */
const jobWriteFails = (error: Error) => dynamo.on(TransactWriteCommand).rejects(error);

/** The job item appears between the replay check and the write: another request, another body, made it. */
function anotherBodyWinsTheKey() {
  const other = { job_id: 'x', api_key_id: 'key-1', request_hash: 'another body', status: 'queued' };
  jobWriteFails(
    new TransactionCanceledException({
      message: 'Transaction cancelled',
      $metadata: {},
      CancellationReasons: [{ Code: 'ConditionalCheckFailed' }, { Code: 'None' }],
    }),
  );
  dynamo.on(GetCommand, { TableName: 'test-jobs' }).resolvesOnce({}).resolves({ Item: other });
}

describe('POST /send-email', () => {
  it('stores an erased cc address by its key, never itself, and keeps the others as given', async () => {
    const erasedKey = erasedKeyWith('k'.repeat(64), 'gone@example.org');
    answerRegistryReads(dynamo, (email) =>
      registered.has(email)
        ? { email, name: 'N', address: 'A' }
        : email === erasedKey
          ? { email, reason: 'erased', suppressed_at: '2026-12-01T00:00:00.000Z' }
          : undefined,
    );
    const result = await post({
      emails: ['a@example.org'],
      template: 'Hi',
      cc: ['gone@example.org', 'boss@example.org'],
    });
    expect(result.statusCode).toBe(202);
    expect(puts()[0]?.Item).toMatchObject({ cc: [erasedKey, 'boss@example.org'] });
    expect(JSON.stringify(dynamo.calls().map((call) => call.args[0].input))).not.toContain(
      'gone@example.org"]',
    );
    // The key's record read strongly consistent: an erasure accepted a moment ago counts.
    const read = dynamo
      .commandCalls(BatchGetCommand)
      .find((call) => JSON.stringify(call.args[0].input).includes(erasedKey));
    expect(read?.args[0].input.RequestItems?.['test-suppressions']).toMatchObject({ ConsistentRead: true });
  });

  it('records the recipients and then the job, enqueues one message per recipient, and answers 202', async () => {
    const result = await post({
      emails: ['B@example.org', 'a@example.org'],
      template: 'Hi {name}',
      cc: ['boss@example.org'],
    });

    expect(result.statusCode).toBe(202);
    const body = jsonBody(result);
    expect(body).toMatchObject({ status: 'queued', total_emails: 2, job_id: expect.any(String) });
    expect(result.headers?.location).toBe(`/jobs/${body.job_id}`);
    const written = puts();
    expect(written.map((put) => put.TableName)).toEqual([
      'test-job-contents',
      'test-job-contents',
      'test-jobs',
      'test-outbox',
    ]);
    expect(written[3]?.Item).toMatchObject({
      event_id: `job-accepted:${body.job_id}`,
      detail_type: 'Job Accepted',
      detail: { job_id: body.job_id, total_emails: 2, status: 'queued', send_at: null },
    });
    expect(written[0]?.Item).toMatchObject({
      part: 0,
      template: 'Hi {name}',
      subject: null,
      cc: ['boss@example.org'],
    });
    expect(written[1]?.Item).toMatchObject({ part: 1, recipients: ['a@example.org', 'b@example.org'] });
    // The job item, rewritten by every batch, stays small: no template in it.
    expect(written[2]?.Item).toMatchObject({
      api_key_id: 'key-1',
      status: 'queued',
      remaining: 2,
      sent: 0,
      failed: 0,
    });
    expect(written[2]?.Item).not.toHaveProperty('template');
    const messages = sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((call) => call.args[0].input.Entries ?? []);
    // Ten recipients a message, chunk by chunk in the job's stored order, each with the name and
    // address the check read (and nothing else of the registry's item).
    expect(messages.map((entry) => JSON.parse(entry.MessageBody ?? '{}'))).toEqual([
      {
        job_id: body.job_id,
        chunk: 0,
        recipients: ['a@example.org', 'b@example.org'],
        nonprofits: [
          { name: 'N', address: 'A' },
          { name: 'N', address: 'A' },
        ],
      },
    ]);
  });

  it("counts the job's recipients and cc copies on the key's quota for the day, and records the day on the job", async () => {
    const result = await post({
      emails: ['a@example.org', 'b@example.org'],
      template: 'Hi',
      cc: ['x@example.org'],
    });

    expect(result.statusCode).toBe(202);
    const [charge] = dynamo.commandCalls(UpdateCommand).map((call) => call.args[0].input);
    expect(charge).toMatchObject({
      TableName: 'test-usage',
      Key: { api_key_id: 'key-1', day: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) },
      ExpressionAttributeValues: { ':amount': 4, ':room': 100_000 - 4 },
    });
    const content = puts()[0]?.Item;
    expect(content?.quota).toEqual({ api_key_id: 'key-1', day: charge?.Key?.day });
  });

  it('answers 429 QUOTA_EXCEEDED with what remains, when it resets and Retry-After, storing nothing', async () => {
    dynamo.on(UpdateCommand).rejects(
      new ConditionalCheckFailedException({
        message: 'The conditional request failed',
        $metadata: {},
        Item: { recipients: { N: '99999' } },
      }),
    );

    const result = await post({ emails: ['a@example.org', 'b@example.org'], template: 'Hi' });

    expect(result.statusCode).toBe(429);
    const body = jsonBody(result);
    expect(body).toMatchObject({ code: 'QUOTA_EXCEEDED', limit: 100_000, remaining: 1, requested: 2 });
    expect(Date.parse(String(body.resets_at))).toBeGreaterThan(Date.now());
    const retryAfter = Number(result.headers?.['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
    expect(puts()).toEqual([]);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });

  it('reads the registry at half the cost, and again strongly consistent only for the addresses that read missed', async () => {
    // The eventually consistent read has not caught up with c@ (registered a moment ago).
    dynamo
      .on(BatchGetCommand)
      .callsFake(
        (input: {
          RequestItems: Record<string, { Keys: { email: string }[]; ConsistentRead?: boolean }>;
        }) => {
          const [table, { Keys, ConsistentRead }] = Object.entries(input.RequestItems)[0] as [
            string,
            { Keys: { email: string }[]; ConsistentRead?: boolean },
          ];
          const seen = (email: string) =>
            registered.has(email) && (ConsistentRead === true || email !== 'c@example.org');
          return {
            Responses: {
              [table]: Keys.filter((key) => seen(key.email)).map((key) => ({
                email: key.email,
                name: 'N',
                address: 'A',
              })),
            },
          };
        },
      );
    const result = await post({ emails: ['a@example.org', 'c@example.org'], template: 'Hi {name}' });
    expect(result.statusCode).toBe(202);
    const reads = dynamo
      .commandCalls(BatchGetCommand)
      .map((call) => Object.values(call.args[0].input.RequestItems ?? {})[0]);
    expect(reads.map((read) => [read?.ConsistentRead ?? false, read?.Keys?.map((key) => key.email)])).toEqual(
      [
        [false, ['a@example.org', 'c@example.org']],
        [true, ['c@example.org']],
      ],
    );
  });

  it('answers 404 naming every unknown recipient, and records nothing', async () => {
    const result = await post({
      emails: ['a@example.org', 'x@example.org', 'y@example.org'],
      template: 'Hi',
    });

    expect(result.statusCode).toBe(404);
    expect(jsonBody(result)).toMatchObject({
      code: 'NOT_FOUND',
      details: [
        { field: 'emails[1]', message: 'Nonprofit with email x@example.org not found.' },
        { field: 'emails[2]', message: 'Nonprofit with email y@example.org not found.' },
      ],
    });
    expect(puts()).toEqual([]);
    expect(sqs).not.toHaveReceivedAnyCommand();
  });

  it.each([
    [{ template: 'Hi' }, 'emails'],
    [{ emails: [], template: 'Hi' }, 'emails'],
    [{ emails: 'a@example.org', template: 'Hi' }, 'emails'],
    [{ emails: ['a@example.org', 'A@Example.org'], template: 'Hi' }, 'emails.1'],
    [{ emails: ['not-an-email'], template: 'Hi' }, 'emails.0'],
    [{ emails: Array.from({ length: 10_001 }, (_, n) => `n${n}@example.org`), template: 'Hi' }, 'emails'],
    [{ emails: ['a@example.org'] }, 'template'],
    [{ emails: ['a@example.org'], template: '' }, 'template'],
    [{ emails: ['a@example.org'], template: 'x'.repeat(100 * 1024 + 1) }, 'template'],
    [{ emails: ['a@example.org'], template: 'Hi {name.__class__}' }, 'template'],
    [{ emails: ['a@example.org'], template: 'Hi', subject: 'About {0}' }, 'subject'],
    [{ emails: ['a@example.org'], template: 'Hi', subject: '' }, 'subject'],
    [
      {
        emails: ['a@example.org'],
        template: 'Hi',
        // SES takes 50 recipients a message: the nonprofit and 49 copies.
        cc: Array.from({ length: 50 }, (_, n) => `c${n}@example.org`),
      },
      'cc',
    ],
    [{ emails: ['a@example.org'], template: 'Hi', cc: ['nope'] }, 'cc.0'],
    [{ emails: ['a@example.org'], template: 'Hi', priority: 'high' }, 'priority'],
  ])('answers 400 for %#, naming %s, and records nothing', async (body, field) => {
    const result = await post(body);

    expect(result.statusCode).toBe(400);
    expect(jsonBody(result)).toMatchObject({
      code: 'VALIDATION_ERROR',
      details: expect.arrayContaining([expect.objectContaining({ field })]),
    });
    expect(dynamo).not.toHaveReceivedAnyCommand();
    expect(sqs).not.toHaveReceivedAnyCommand();
  });

  describe('refuses content that would break or bloat an email, recording nothing', () => {
    const refused = async (body: unknown, field: string, message: string) => {
      const result = await post(body);

      expect(result.statusCode).toBe(400);
      expect(jsonBody(result)).toMatchObject({
        code: 'VALIDATION_ERROR',
        details: expect.arrayContaining([{ field, message }]),
      });
      expect(dynamo).not.toHaveReceivedAnyCommand();
      expect(sqs).not.toHaveReceivedAnyCommand();
    };

    it('a subject with a line break, which would add a header', () =>
      refused(
        { emails: ['a@example.org'], template: 'Hi', subject: 'Hi {name}\r\nX-Injected: 1' },
        'subject',
        'Must not contain line breaks or other control characters (found U+000D at position 9)',
      ));

    it('a body with a NUL', () =>
      refused(
        { emails: ['a@example.org'], template: 'Hi\u0000 {name}' },
        'template',
        'Must not contain control characters other than tab, line feed and carriage return (found U+0000 at position 2)',
      ));

    it('cc copies that take the job over the recipient limit', () =>
      refused(
        {
          emails: Array.from({ length: 2_600 }, (_, n) => `n${n}@example.org`),
          template: 'Hi',
          cc: ['c1@example.org', 'c2@example.org', 'c3@example.org'],
        },
        'cc',
        'Each email is copied to 3 cc addresses: 2,600 recipients × 4 copies = 10,400, over the limit of 10,000 per job',
      ));

    it('a cc address named twice, in any case', () =>
      refused(
        { emails: ['a@example.org'], template: 'Hi', cc: ['boss@example.org', 'Boss@Example.org'] },
        'cc.1',
        'Duplicate of cc[0] (boss@example.org)',
      ));

    it('a cc address that is also a recipient', () =>
      refused(
        { emails: ['a@example.org', 'b@example.org'], template: 'Hi', cc: ['b@example.org'] },
        'cc.0',
        'b@example.org is also emails[1]: it would get its own email and a copy of every other',
      ));

    it('a template whose emails could render over the size limit', () =>
      refused(
        // As many placeholders as the 100 KB template limit allows: each could insert 1,500 bytes.
        { emails: ['a@example.org'], template: '{address}'.repeat(11_377) },
        'template',
        `Rendered emails could reach ${(17_065_500 + FOOTER_BYTES).toLocaleString('en-US')} bytes (subject, body and footer with each placeholder at its field's longest), over the limit of 262,144 bytes`,
      ));
  });

  it('accepts a body with tabs and line breaks', async () => {
    const result = await post({ emails: ['a@example.org'], template: 'Hi {name},\r\n\n\tThanks.\n' });

    expect(result.statusCode).toBe(202);
  });

  it('accepts 49 cc addresses, the most SES takes with the recipient, and refuses a blank subject', async () => {
    const cc = Array.from({ length: 49 }, (_, n) => `c${n}@example.org`);
    expect((await post({ emails: ['a@example.org'], template: 'Hi', cc })).statusCode).toBe(202);

    const blank = await post({ emails: ['a@example.org'], template: 'Hi', subject: '   ' });
    expect(blank.statusCode).toBe(400);
    expect(JSON.stringify(jsonBody(blank).details)).toContain('leave subject out');
  });

  it('accepts emails that render to exactly the size limit at worst, and refuses one byte more', async () => {
    const limit = Number(process.env.MAX_RENDERED_EMAIL_BYTES);
    const subject = 'Hi {name}';
    // Worst case: literal UTF-8 bytes, plus 3 bytes per UTF-16 unit of each field at its longest,
    // plus the footer with the longest address and link.
    const subjectBytes = 'Hi '.length + PLACEHOLDER_MAX_LENGTH.name * 3 + FOOTER_BYTES;
    const perAddress = PLACEHOLDER_MAX_LENGTH.address * 3;
    const addresses = Math.floor((limit - subjectBytes) / perAddress);
    const filler = limit - subjectBytes - addresses * perAddress;
    const template = '{address}'.repeat(addresses) + 'x'.repeat(filler);

    const atLimit = await post({ emails: ['a@example.org'], template, subject });
    expect(atLimit.statusCode).toBe(202);

    dynamo.resetHistory();
    const over = await post({ emails: ['a@example.org'], template: `${template}x`, subject });
    expect(over.statusCode).toBe(400);
    expect(jsonBody(over)).toMatchObject({
      details: [
        {
          field: 'template',
          message: expect.stringContaining(`${(limit + 1).toLocaleString('en-US')} bytes`),
        },
      ],
    });
    expect(puts()).toEqual([]);
  });

  it('answers 400 for a malformed Idempotency-Key', async () => {
    const result = await post(
      { emails: ['a@example.org'], template: 'Hi' },
      { 'Idempotency-Key': 'has spaces' },
    );
    expect(result.statusCode).toBe(400);
    expect(dynamo).not.toHaveReceivedAnyCommand();
  });

  it('returns the existing job for a replayed Idempotency-Key, and 409 for another body under it', async () => {
    const first = await post(
      { emails: ['a@example.org'], template: 'Hi {name}' },
      { 'Idempotency-Key': 'order-1' },
    );
    const stored = puts().find((put) => put.TableName === 'test-jobs')?.Item;
    dynamo.on(GetCommand).resolves({ Item: stored });

    const replay = await post(
      { emails: ['A@example.org'], template: 'Hi {name}' },
      { 'idempotency-key': 'order-1' },
    );
    expect(replay.statusCode).toBe(202);
    expect(jsonBody(replay).job_id).toBe(jsonBody(first).job_id);
    expect(replay.headers?.['idempotent-replayed']).toBe('true');
    // The content's two parts, the job and its event: nothing more.
    expect(puts()).toHaveLength(4);
    // Counted once, by the request that made the job: a replay takes no quota.
    expect(dynamo).toHaveReceivedCommandTimes(UpdateCommand, 1);

    const conflict = await post(
      { emails: ['b@example.org'], template: 'Hi {name}' },
      { 'Idempotency-Key': 'order-1' },
    );
    expect(conflict.statusCode).toBe(409);
    // The content's two parts, the job and its event: nothing more.
    expect(puts()).toHaveLength(4);
    expect(dynamo).toHaveReceivedCommandTimes(UpdateCommand, 1);
  });

  it('gives the count back when the job is refused after it was counted (another body won the Idempotency-Key)', async () => {
    anotherBodyWinsTheKey();

    const refused = await post({ emails: ['a@example.org'], template: 'Hi' }, { 'Idempotency-Key': 'race' });

    expect(refused.statusCode).toBe(409);
    const updates = dynamo
      .commandCalls(UpdateCommand)
      .map((call) => call.args[0].input.ExpressionAttributeValues);
    expect(updates).toEqual([
      expect.objectContaining({ ':amount': 1 }),
      expect.objectContaining({ ':refund': -1, ':amount': 1 }),
    ]);
  });

  it('gives the count back when writing the job fails and the job does not exist, keeps it when it does', async () => {
    const throttled = () => Object.assign(new Error('Throughput exceeded'), { name: 'ThrottlingException' });
    jobWriteFails(throttled());
    const amounts = () =>
      dynamo
        .commandCalls(UpdateCommand)
        .map((call) => call.args[0].input.ExpressionAttributeValues?.[':refund']);

    const lost = await post({ emails: ['a@example.org', 'b@example.org'], template: 'Hi' });
    expect(lost.statusCode).toBe(500);
    // No job was written: nothing will be sent, so nothing stays counted.
    expect(amounts()).toEqual([undefined, -2]);

    const now = new Date('2026-11-28T10:00:00.000Z');
    vi.useFakeTimers({ now, toFake: ['Date'] });
    try {
      const failingAfter = (made: { created_at: string }) => {
        dynamo.reset();
        answerRegistryReads(dynamo, (email) => ({ email, name: 'N', address: 'A' }));
        jobWriteFails(throttled());
        dynamo.on(GetCommand, { TableName: 'test-jobs' }).resolvesOnce({}).resolves({ Item: made });
      };
      const send = () => post({ emails: ['a@example.org'], template: 'Hi' }, { 'Idempotency-Key': 'k' });

      // The write failed on the way back, after DynamoDB stored this request's job: it stays counted.
      failingAfter({ created_at: now.toISOString() });
      expect((await send()).statusCode).toBe(500);
      expect(amounts()).toEqual([undefined]);

      // The job under the key is another request's (the same body, a moment before): that one was counted.
      failingAfter({ created_at: '2026-11-28T09:59:59.990Z' });
      expect((await send()).statusCode).toBe(500);
      expect(amounts()).toEqual([undefined, -1]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps the answer when giving the count back fails: the refusal is still a 409', async () => {
    anotherBodyWinsTheKey();
    dynamo.on(UpdateCommand).resolvesOnce({}).rejects(new Error('DynamoDB unavailable'));
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);

    const refused = await post(
      { emails: ['a@example.org'], template: 'Hi' },
      { 'Idempotency-Key': 'race-2' },
    );

    expect(refused.statusCode).toBe(409);
    expect(warn).toHaveBeenCalledWith(
      expect.stringContaining('quota'),
      expect.objectContaining({ recipients: 1 }),
    );
    warn.mockRestore();
  });

  it('still answers 202 when enqueueing fails after the job was recorded: the sweeper enqueues it', async () => {
    sqs.on(SendMessageBatchCommand).rejects(new Error('SQS unavailable'));
    const log = vi.spyOn(logger, 'error').mockImplementation(() => undefined);

    const result = await post({ emails: ['a@example.org'], template: 'Hi' });

    expect(result.statusCode).toBe(202);
    // The content's two parts, the job and its event: nothing more.
    expect(puts()).toHaveLength(4);
    expect(log).toHaveBeenCalledWith(
      expect.stringContaining('sweeper'),
      expect.objectContaining({ job_id: expect.any(String) }),
    );
    log.mockRestore();
  });
});

describe('POST /send-email with send_at', () => {
  const inAnHour = () => new Date(Date.now() + 3_600_000);

  it('accepts a job for later: 202 scheduled with its time in UTC, counted and told now, nothing enqueued', async () => {
    const at = inAnHour();
    // Written with an offset: stored and answered in UTC, to the millisecond.
    const local = new Date(at.getTime() + 2 * 3_600_000).toISOString().replace('Z', '+02:00');
    const result = await post({ emails: ['a@example.org'], template: 'Hi {name}', send_at: local });

    expect(result.statusCode).toBe(202);
    expect(jsonBody(result)).toMatchObject({
      status: 'scheduled',
      total_emails: 1,
      send_at: at.toISOString(),
      message: expect.stringContaining('scheduled'),
    });
    const job = puts().find((put) => put.TableName === 'test-jobs')?.Item;
    expect(job).toMatchObject({
      status: 'scheduled',
      send_at: at.toISOString(),
      scheduled: expect.any(String),
    });
    expect(job).not.toHaveProperty('active');
    expect(puts().find((put) => put.TableName === 'test-outbox')?.Item).toMatchObject({
      detail: { status: 'scheduled', send_at: at.toISOString() },
    });
    expect(dynamo).toHaveReceivedCommandTimes(UpdateCommand, 1);
    expect(sqs).not.toHaveReceivedAnyCommand();
  });

  it.each([
    ['without a zone', '2031-01-01T09:00:00', 'with a zone'],
    ['not a date', 'next tuesday', 'ISO 8601'],
    ['an impossible date', '2031-02-30T09:00:00Z', 'ISO 8601'],
    ['in the past', '2020-01-01T00:00:00Z', 'in the future'],
    ['under a minute ahead', () => new Date(Date.now() + 30_000).toISOString(), 'at least one minute'],
    ['over 30 days ahead', () => new Date(Date.now() + 31 * 24 * 3_600_000).toISOString(), 'at most 30 days'],
    ['not a string', 1_900_000_000, 'ISO 8601'],
  ])('answers 400 naming send_at %s, storing and counting nothing', async (_, value, words) => {
    const sendAt = typeof value === 'function' ? value() : value;
    const result = await post({ emails: ['a@example.org'], template: 'Hi', send_at: sendAt });
    expect(result.statusCode).toBe(400);
    expect(jsonBody(result).details).toEqual([{ field: 'send_at', message: expect.stringContaining(words) }]);
    expect(puts()).toEqual([]);
    expect(dynamo).not.toHaveReceivedCommand(UpdateCommand);
  });
});
