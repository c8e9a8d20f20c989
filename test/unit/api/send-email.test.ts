import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { BatchGetCommand, DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { handler } from '../../../lambdas/api/send-email';
import { logger } from '../../../lambdas/core/observability/telemetry';
import { apiEvent, jsonBody, lambdaContext } from '../../support/api-events';

const dynamo = mockClient(DynamoDBDocumentClient);
const sqs = mockClient(SQSClient);

const registered = new Set(['a@example.org', 'b@example.org', 'c@example.org']);

beforeEach(() => {
  dynamo.reset();
  sqs.reset();
  dynamo
    .on(BatchGetCommand)
    .callsFake((input: { RequestItems: Record<string, { Keys: { email: string }[] }> }) => {
      const [table, { Keys }] = Object.entries(input.RequestItems)[0] as [
        string,
        { Keys: { email: string }[] },
      ];
      return {
        Responses: {
          [table]: Keys.filter((key) => registered.has(key.email)).map((key) => ({
            ...key,
            name: 'N',
            address: 'A',
          })),
        },
      };
    });
  dynamo.on(GetCommand).resolves({});
  dynamo.on(PutCommand).resolves({});
  sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
});

const post = (body: unknown, headers: Record<string, string> = {}) =>
  handler(
    apiEvent({ httpMethod: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers }),
    lambdaContext,
  );

describe('POST /send-email', () => {
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
    const puts = dynamo.commandCalls(PutCommand).map((call) => call.args[0].input);
    expect(puts.map((put) => put.TableName)).toEqual(['test-job-contents', 'test-job-contents', 'test-jobs']);
    expect(puts[0]?.Item).toMatchObject({
      part: 0,
      template: 'Hi {name}',
      subject: null,
      cc: ['boss@example.org'],
    });
    expect(puts[1]?.Item).toMatchObject({ part: 1, recipients: ['a@example.org', 'b@example.org'] });
    // The job item, rewritten by every batch, stays small: no template in it.
    expect(puts[2]?.Item).toMatchObject({
      api_key_id: 'key-1',
      status: 'queued',
      remaining: 2,
      sent: 0,
      failed: 0,
    });
    expect(puts[2]?.Item).not.toHaveProperty('template');
    const messages = sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((call) => call.args[0].input.Entries ?? []);
    expect(messages.map((entry) => JSON.parse(entry.MessageBody ?? '{}'))).toEqual([
      { job_id: body.job_id, recipient: 'a@example.org' },
      { job_id: body.job_id, recipient: 'b@example.org' },
    ]);
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
    expect(dynamo).not.toHaveReceivedCommand(PutCommand);
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
    [
      {
        emails: ['a@example.org'],
        template: 'Hi',
        cc: Array.from({ length: 51 }, (_, n) => `c${n}@example.org`),
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
    const stored = dynamo.commandCalls(PutCommand).at(-1)?.args[0].input.Item;
    dynamo.on(GetCommand).resolves({ Item: stored });

    const replay = await post(
      { emails: ['A@example.org'], template: 'Hi {name}' },
      { 'idempotency-key': 'order-1' },
    );
    expect(replay.statusCode).toBe(202);
    expect(jsonBody(replay).job_id).toBe(jsonBody(first).job_id);
    expect(replay.headers?.['idempotent-replayed']).toBe('true');
    expect(dynamo).toHaveReceivedCommandTimes(PutCommand, 3);

    const conflict = await post(
      { emails: ['b@example.org'], template: 'Hi {name}' },
      { 'Idempotency-Key': 'order-1' },
    );
    expect(conflict.statusCode).toBe(409);
    expect(dynamo).toHaveReceivedCommandTimes(PutCommand, 3);
  });

  it('still answers 202 when enqueueing fails after the job was recorded: the sweeper enqueues it', async () => {
    sqs.on(SendMessageBatchCommand).rejects(new Error('SQS unavailable'));
    const log = vi.spyOn(logger, 'error').mockImplementation(() => undefined);

    const result = await post({ emails: ['a@example.org'], template: 'Hi' });

    expect(result.statusCode).toBe(202);
    expect(dynamo).toHaveReceivedCommandTimes(PutCommand, 3);
    expect(log).toHaveBeenCalledWith(
      expect.stringContaining('sweeper'),
      expect.objectContaining({ job_id: expect.any(String) }),
    );
    log.mockRestore();
  });
});
