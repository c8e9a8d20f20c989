import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { makeCreateNonprofit } from '../../../lambdas/api/create-nonprofit';
import { makeDeleteNonprofit } from '../../../lambdas/api/delete-nonprofit';
import { makeGetNonprofit } from '../../../lambdas/api/get-nonprofit';
import { makeListNonprofits } from '../../../lambdas/api/list-nonprofits';
import { makeUpdateNonprofit } from '../../../lambdas/api/update-nonprofit';
import { documentClient } from '../../../lambdas/core/aws-clients';
import { DynamoNonprofitRepository } from '../../../lambdas/core/nonprofits/dynamodb/dynamo-nonprofit-repository';
import { logger } from '../../../lambdas/core/observability/telemetry';
import { apiEvent, jsonBody, lambdaContext } from '../../support/api-events';

const dynamo = mockClient(DynamoDBDocumentClient);
const NOW = new Date('2026-11-27T10:00:00.000Z');
const nonprofits = new DynamoNonprofitRepository({
  client: documentClient,
  tableName: 'nonprofits',
  now: () => NOW,
});
const deps = { nonprofits };
const stored = {
  email: 'info@example.org',
  domain: 'example.org',
  name: 'Example',
  address: '1 Main St',
  created_at: NOW.toISOString(),
  updated_at: NOW.toISOString(),
};
const conditionFailed = () =>
  new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });

beforeEach(() => {
  dynamo.reset();
});

describe('POST /nonprofits', () => {
  // No address was erased: the registry's own answers are what is tested here.
  const create = makeCreateNonprofit({ ...deps, erased: { rememberErased: async () => [] } });
  const post = (body: unknown) =>
    create(
      apiEvent({ httpMethod: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) }),
      lambdaContext,
    );

  it('stores the nonprofit with its email lower-cased and its domain, only if absent', async () => {
    dynamo.on(PutCommand).resolves({});

    const result = await post({ email: ' Info@Example.ORG ', name: ' Example ', address: '1 Main St' });

    expect(result.statusCode).toBe(201);
    expect(jsonBody(result)).toEqual(stored);
    expect(result.headers?.location).toBe('/nonprofits/info%40example.org');
    expect(dynamo).toHaveReceivedCommandWith(PutCommand, {
      TableName: 'nonprofits',
      Item: stored,
      ConditionExpression: 'attribute_not_exists(email)',
    });
  });

  it('answers 409 when the email exists', async () => {
    dynamo.on(PutCommand).rejects(conditionFailed());

    const result = await post({ email: 'INFO@example.org', name: 'Example', address: '1 Main St' });

    expect(result.statusCode).toBe(409);
    expect(jsonBody(result)).toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining('info@example.org'),
    });
  });

  it.each([
    ['no body', undefined, 'Request body is required'],
    ['malformed JSON', '{"email":', 'Request body is not valid JSON'],
    ['an array', '[]', 'Request body must be a JSON object'],
    ['a string', '"text"', 'Request body must be a JSON object'],
    ['null', 'null', 'Request body must be a JSON object'],
  ])('answers 400 for %s, storing nothing', async (_, body, message) => {
    const result = await create(apiEvent({ httpMethod: 'POST', body: body ?? null }), lambdaContext);

    expect(result.statusCode).toBe(400);
    expect(jsonBody(result)).toEqual({ message, code: 'VALIDATION_ERROR' });
    expect(dynamo).not.toHaveReceivedAnyCommand();
  });

  it.each([
    [{ name: 'A', address: 'B' }, 'email'],
    [{ email: 'not-an-email', name: 'A', address: 'B' }, 'email'],
    [{ email: 42, name: 'A', address: 'B' }, 'email'],
    [{ email: `${'a'.repeat(250)}@example.org`, name: 'A', address: 'B' }, 'email'],
    [{ email: 'a@example.org', name: '   ', address: 'B' }, 'name'],
    [{ email: 'a@example.org', name: 'x'.repeat(201), address: 'B' }, 'name'],
    [{ email: 'a@example.org', name: ['A'], address: 'B' }, 'name'],
    [{ email: 'a@example.org', name: 'A', address: 'x'.repeat(501) }, 'address'],
    [{ email: 'a@example.org', name: 'A', address: null }, 'address'],
    [{ email: 'a@example.org', name: 'A', address: 'B', admin: true }, 'admin'],
  ])('answers 400 naming the bad field for %j', async (body, field) => {
    const result = await post(body);

    expect(result.statusCode).toBe(400);
    expect(jsonBody(result)).toMatchObject({
      code: 'VALIDATION_ERROR',
      details: expect.arrayContaining([expect.objectContaining({ field })]),
    });
    expect(dynamo).not.toHaveReceivedAnyCommand();
  });

  // A name or address is inserted into subjects, which are headers: a line break would add one.
  it.each([
    ['name', { name: 'X\r\nBcc: a@evil.example', address: 'B' }, 'U+000D at position 1'],
    ['name', { name: 'X\u2028Y', address: 'B' }, 'U+2028 at position 1'],
    ['address', { name: 'A', address: '1 Main St\tSuite 2' }, 'U+0009 at position 9'],
    // Positions count in the text as sent, leading spaces (trimmed away) included.
    ['address', { name: 'A', address: '  1 Main St\u0000' }, 'U+0000 at position 11'],
  ])('answers 400 for a control character in the %s, storing nothing', async (field, details, found) => {
    const result = await post({ email: 'a@example.org', ...details });

    expect(result.statusCode).toBe(400);
    expect(jsonBody(result)).toMatchObject({
      code: 'VALIDATION_ERROR',
      details: [
        {
          field,
          message: `Must not contain line breaks or other control characters (found ${found})`,
        },
      ],
    });
    expect(dynamo).not.toHaveReceivedAnyCommand();
  });

  it('still trims line breaks at either end, as it trims any whitespace there', async () => {
    dynamo.on(PutCommand).resolves({});

    const result = await post({ email: 'info@example.org', name: '\r\nExample\n', address: '1 Main St\r\n' });

    expect(result.statusCode).toBe(201);
    expect(jsonBody(result)).toEqual(stored);
  });

  it('answers 500 with a generic body when DynamoDB fails, and logs the cause', async () => {
    dynamo.on(PutCommand).rejects(new Error('connection reset'));
    const log = vi.spyOn(logger, 'error').mockImplementation(() => undefined);

    const result = await post({ email: 'a@example.org', name: 'A', address: 'B' });

    expect(result.statusCode).toBe(500);
    expect(jsonBody(result)).toEqual({ message: 'Internal server error', code: 'INTERNAL_ERROR' });
    expect(log).toHaveBeenCalledWith(
      'Unhandled error',
      expect.objectContaining({ message: 'connection reset' }),
    );
    log.mockRestore();
  });
});

describe('GET /nonprofits/{email}', () => {
  const get = makeGetNonprofit(deps);

  it('decodes the path parameter, as API Gateway passes it percent-encoded', async () => {
    dynamo.on(GetCommand, { Key: { email: 'info@example.org' } }).resolves({ Item: stored });

    const result = await get(apiEvent({ pathParameters: { email: 'Info%40Example.org' } }), lambdaContext);

    expect(result.statusCode).toBe(200);
    expect(jsonBody(result)).toEqual(stored);
  });

  it('answers 404 for an unknown email', async () => {
    dynamo.on(GetCommand).resolves({});

    const result = await get(apiEvent({ pathParameters: { email: 'nobody@example.org' } }), lambdaContext);

    expect(result.statusCode).toBe(404);
    expect(jsonBody(result)).toEqual({
      message: 'Nonprofit with email nobody@example.org not found.',
      code: 'NOT_FOUND',
    });
  });

  it.each(['not-an-email', '%E0%A4%A'])('answers 400 for the path parameter %s', async (email) => {
    const result = await get(apiEvent({ pathParameters: { email } }), lambdaContext);

    expect(result.statusCode).toBe(400);
    expect(jsonBody(result)).toMatchObject({ details: [expect.objectContaining({ field: 'path.email' })] });
    expect(dynamo).not.toHaveReceivedAnyCommand();
  });
});

describe('PUT /nonprofits/{email}', () => {
  const update = makeUpdateNonprofit(deps);
  const put = (body: unknown) =>
    update(
      apiEvent({
        httpMethod: 'PUT',
        pathParameters: { email: 'info@example.org' },
        body: JSON.stringify(body),
      }),
      lambdaContext,
    );

  it('replaces name and address of an existing nonprofit, while it still holds what was read', async () => {
    dynamo.on(GetCommand).resolves({ Item: stored });
    dynamo.on(UpdateCommand).resolves({});

    const result = await put({ name: '  New name ', address: '9 Elm St' });

    expect(result.statusCode).toBe(200);
    expect(jsonBody(result)).toMatchObject({
      name: 'New name',
      address: '9 Elm St',
      updated_at: NOW.toISOString(),
    });
    // What was written: the request's values, trimmed, and when, over the values read.
    expect(dynamo).toHaveReceivedCommandWith(UpdateCommand, {
      Key: { email: 'info@example.org' },
      ConditionExpression: '#name = :readName AND address = :readAddress',
      ExpressionAttributeValues: {
        ':name': 'New name',
        ':address': '9 Elm St',
        ':updated_at': NOW.toISOString(),
        ':readName': stored.name,
        ':readAddress': stored.address,
      },
    });
  });

  it('answers 404 for an unknown email, writing nothing', async () => {
    dynamo.on(GetCommand).resolves({});

    expect((await put({ name: 'A', address: 'B' })).statusCode).toBe(404);
    expect(dynamo).not.toHaveReceivedCommand(UpdateCommand);
  });

  it('reads again when the nonprofit changed between its read and the write', async () => {
    dynamo
      .on(GetCommand)
      .resolvesOnce({ Item: stored })
      .resolves({ Item: { ...stored, name: 'Renamed meanwhile' } });
    dynamo.on(UpdateCommand).rejectsOnce(conditionFailed()).resolves({});

    expect((await put({ name: 'A', address: 'B' })).statusCode).toBe(200);
    expect(dynamo).toHaveReceivedCommandTimes(UpdateCommand, 2);
    expect(dynamo).toHaveReceivedNthCommandWith(UpdateCommand, 2, {
      ExpressionAttributeValues: expect.objectContaining({ ':readName': 'Renamed meanwhile' }),
    });
  });

  it('answers 400 for an address with a line break, updating nothing', async () => {
    const result = await put({ name: 'A', address: '1 Main St\nBcc: a@evil.example' });

    expect(result.statusCode).toBe(400);
    expect(jsonBody(result)).toMatchObject({
      details: [{ field: 'address', message: expect.stringContaining('found U+000A at position 9') }],
    });
    expect(dynamo).not.toHaveReceivedAnyCommand();
  });

  it('answers 400 for an email in the body: the key cannot change', async () => {
    const result = await put({ name: 'A', address: 'B', email: 'other@example.org' });

    expect(result.statusCode).toBe(400);
    expect(dynamo).not.toHaveReceivedAnyCommand();
  });
});

describe('DELETE /nonprofits/{email}', () => {
  const remove = makeDeleteNonprofit(deps);

  it('answers 204 when deleted and 404 when absent', async () => {
    dynamo.on(DeleteCommand).resolvesOnce({}).rejectsOnce(conditionFailed());
    const event = apiEvent({ httpMethod: 'DELETE', pathParameters: { email: 'info@example.org' } });

    expect((await remove(event, lambdaContext)).statusCode).toBe(204);
    expect((await remove(event, lambdaContext)).statusCode).toBe(404);
  });
});

describe('GET /nonprofits', () => {
  const list = makeListNonprofits(deps);
  const query = (parameters: Record<string, string>) =>
    list(apiEvent({ queryStringParameters: parameters }), lambdaContext);
  const item = (n: number) => ({ ...stored, email: `n${n}@example.org` });

  it('filters by domain with a Query on the domain index, never a Scan', async () => {
    dynamo.on(QueryCommand).resolves({ Items: [item(1)] });

    const result = await query({ domain: 'Example.ORG' });

    expect(result.statusCode).toBe(200);
    expect(jsonBody(result)).toEqual({ nonprofits: [item(1)], next_cursor: null });
    expect(dynamo).toHaveReceivedCommandWith(QueryCommand, {
      IndexName: 'by-domain',
      ExpressionAttributeValues: { ':domain': 'example.org' },
      Limit: 51,
    });
    expect(dynamo).not.toHaveReceivedCommand(ScanCommand);
  });

  it('hands out a cursor that resumes after the last item of the page', async () => {
    dynamo
      .on(QueryCommand)
      .resolvesOnce({ Items: [item(1), item(2), item(3)] })
      .resolvesOnce({ Items: [item(3)] });

    const first = jsonBody(await query({ domain: 'example.org', limit: '2' }));
    expect(first.nonprofits).toEqual([item(1), item(2)]);
    expect(first.next_cursor).toEqual(expect.any(String));

    const second = jsonBody(
      await query({ domain: 'example.org', limit: '2', cursor: String(first.next_cursor) }),
    );
    expect(second).toEqual({ nonprofits: [item(3)], next_cursor: null });
    expect(dynamo.commandCalls(QueryCommand)[1]?.args[0].input).toMatchObject({
      ExclusiveStartKey: { email: 'n2@example.org', domain: 'example.org' },
    });
  });

  it('lists everything with a paged Scan when no domain is given', async () => {
    dynamo.on(ScanCommand).resolves({ Items: [item(1)] });

    expect(jsonBody(await query({}))).toEqual({ nonprofits: [item(1)], next_cursor: null });
  });

  it.each([
    [{ limit: '0' }, 'query.limit'],
    [{ limit: '101' }, 'query.limit'],
    [{ limit: 'ten' }, 'query.limit'],
    [{ limit: '2.5' }, 'query.limit'],
    [{ domain: 'not a domain' }, 'query.domain'],
    [{ cursor: 'forged' }, 'query.cursor'],
    [
      { cursor: Buffer.from('{"v":1,"q":"nonprofits","k":{"email":7}}').toString('base64url') },
      'query.cursor',
    ],
    [{ sort: 'name' }, 'query.sort'],
  ])('answers 400 for %j, never reaching DynamoDB', async (parameters, field) => {
    const result = await query(parameters);

    expect(result.statusCode).toBe(400);
    expect(jsonBody(result)).toMatchObject({ details: [expect.objectContaining({ field })] });
    expect(dynamo).not.toHaveReceivedAnyCommand();
  });

  it('refuses a cursor issued for another domain', async () => {
    dynamo.on(QueryCommand).resolves({ Items: [item(1), item(2)] });
    const { next_cursor } = jsonBody(await query({ domain: 'example.org', limit: '1' }));

    const result = await query({ domain: 'other.org', cursor: String(next_cursor) });

    expect(result.statusCode).toBe(400);
    expect(dynamo).toHaveReceivedCommandTimes(QueryCommand, 1);
  });
});
