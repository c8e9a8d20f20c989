import type { SQSEvent } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { makeGetPersonRequest } from '../../../lambdas/api/get-person-request';
import { makeRequestPersonRequest } from '../../../lambdas/api/person-request';
import { erasedKeyWith } from '../../../lambdas/core/people/address-keys';
import type { PersonRequest, PersonRequestStore } from '../../../lambdas/core/people/person-requests';
import { makePersonRequestWorker } from '../../../lambdas/worker/person-requests';
import { apiEvent, jsonBody, lambdaContext } from '../../support/api-events';

const REQUEST_ID = '5d0c2f44-9a55-4f4e-8a1e-6a1f1d3c2b10';
const keys = { erasedKeyOf: async (email: string) => erasedKeyWith('test-address-key', email) };
const queued: PersonRequest = {
  request_id: REQUEST_ID,
  kind: 'export',
  email: 'jane@example.org',
  status: 'queued',
  requested_at: '2026-12-04T10:00:00.000Z',
  api_key_id: 'key-1',
  segments_done: 0,
  segments_total: 0,
};

function store(overrides: Partial<PersonRequestStore> = {}): PersonRequestStore {
  return {
    create: vi.fn(async () => ({ created: true as const })),
    discard: vi.fn(async () => {}),
    get: vi.fn(async () => undefined),
    findings: vi.fn(async () => ({ items: [], nextCursor: null })),
    started: vi.fn(async () => {}),
    addFindings: vi.fn(async () => {}),
    segmentDone: vi.fn(async () => ({ allDone: false })),
    complete: vi.fn(async () => {}),
    release: vi.fn(async () => {}),
    waitFor: vi.fn(async () => {}),
    keepAlive: vi.fn(async () => {}),
    countErased: vi.fn(async () => {}),
    completeErasure: vi.fn(async () => {}),
    ...overrides,
  };
}

const exportOf = (email: string) =>
  apiEvent({ httpMethod: 'POST', pathParameters: { email: encodeURIComponent(email) } });

describe('POST /people/{email}/export', () => {
  it('answers 202 with the request id and where to read it, the address lower-cased, the start queued', async () => {
    const requests = store();
    const queue = { send: vi.fn(async () => {}) };
    const result = await makeRequestPersonRequest('export', { requests, queue, keys })(
      exportOf(' Jane@Example.org'),
      lambdaContext,
    );
    expect(result.statusCode).toBe(202);
    const body = jsonBody(result);
    expect(result.headers?.location).toBe(`/people/requests/${body.request_id}`);
    expect(body).toMatchObject({ status: 'queued' });
    expect(requests.create).toHaveBeenCalledWith(
      expect.objectContaining({ kind: 'export', email: 'jane@example.org', api_key_id: 'key-1' }),
    );
    expect(queue.send).toHaveBeenCalledWith([{ step: 'start', request_id: body.request_id }], 0);
  });

  it('refuses a malformed address with 400 naming it, and records nothing', async () => {
    const requests = store();
    const result = await makeRequestPersonRequest('export', { requests, queue: { send: vi.fn() }, keys })(
      exportOf('not-an-address'),
      lambdaContext,
    );
    expect(result.statusCode).toBe(400);
    expect(jsonBody(result)).toMatchObject({ code: 'VALIDATION_ERROR', details: [{ field: 'path.email' }] });
    expect(requests.create).not.toHaveBeenCalled();
  });

  it('answers 409 naming the export under way for the address, and queues nothing', async () => {
    const queue = { send: vi.fn(async () => {}) };
    const requests = store({
      create: vi.fn(async () => ({ created: false as const, held_by: REQUEST_ID, kind: 'export' as const })),
    });
    const result = await makeRequestPersonRequest('export', { requests, queue, keys })(
      exportOf('jane@example.org'),
      lambdaContext,
    );
    expect(result.statusCode).toBe(409);
    expect(result.headers?.location).toBe(`/people/requests/${REQUEST_ID}`);
    expect(jsonBody(result)).toMatchObject({ code: 'CONFLICT', request_id: REQUEST_ID, kind: 'export' });
    expect(queue.send).not.toHaveBeenCalled();
  });

  it("answers 409 naming an erasure under way for the address (held by the address's key), and queues nothing", async () => {
    const queue = { send: vi.fn(async () => {}) };
    const requests = store({
      create: vi.fn(async () => ({ created: false as const, held_by: REQUEST_ID, kind: 'erasure' as const })),
    });
    const result = await makeRequestPersonRequest('export', { requests, queue, keys })(
      exportOf('jane@example.org'),
      lambdaContext,
    );
    expect(result.statusCode).toBe(409);
    expect(jsonBody(result)).toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining('An erasure of this address is under way'),
      request_id: REQUEST_ID,
      kind: 'erasure',
    });
    expect(requests.create).toHaveBeenCalledWith(
      expect.objectContaining({
        unless_held: `hold#erasure#${await keys.erasedKeyOf('jane@example.org')}`,
      }),
    );
    expect(queue.send).not.toHaveBeenCalled();
  });
});

describe('GET /people/requests/{request_id}', () => {
  const read = (id: string, query: Record<string, string> | null = null) =>
    apiEvent({ pathParameters: { request_id: id }, queryStringParameters: query });

  it('answers 404 for an unknown id, 400 for one that is no id or a cursor it did not issue', async () => {
    const handler = makeGetPersonRequest({ requests: store() });
    expect((await handler(read(REQUEST_ID), lambdaContext)).statusCode).toBe(404);
    expect((await handler(read('export'), lambdaContext)).statusCode).toBe(400);
    const known = makeGetPersonRequest({
      requests: store({
        get: vi.fn(async () => queued),
        findings: vi.fn(async () => {
          throw new Error('no result is read before the request completes');
        }),
      }),
    });
    expect((await known(read(REQUEST_ID, { limit: '0' }), lambdaContext)).statusCode).toBe(400);
  });

  it('shows progress without a result until the request completes, then the result', async () => {
    const running = { ...queued, status: 'running' as const, segments_done: 1, segments_total: 4 };
    const before = await makeGetPersonRequest({ requests: store({ get: vi.fn(async () => running) }) })(
      read(REQUEST_ID),
      lambdaContext,
    );
    expect(jsonBody(before)).toEqual({
      request_id: REQUEST_ID,
      kind: 'export',
      email: 'jane@example.org',
      status: 'running',
      requested_at: queued.requested_at,
      progress: { segments_done: 1, segments_total: 4 },
    });
    const completed = {
      ...running,
      status: 'completed' as const,
      segments_done: 4,
      completed_at: '2026-12-04T10:01:00.000Z',
      nonprofit: null,
      suppression: null,
    };
    const after = await makeGetPersonRequest({
      requests: store({ get: vi.fn(async () => completed) }),
    })(read(REQUEST_ID), lambdaContext);
    expect(jsonBody(after)).toMatchObject({
      status: 'completed',
      result: { nonprofit: null, suppression: null, emails: [], next_cursor: null },
    });
  });
});

describe("the person requests' worker", () => {
  const event = (...bodies: string[]): SQSEvent =>
    ({
      Records: bodies.map((body, index) => ({ messageId: `m${index}`, body, attributes: {} })),
    }) as unknown as SQSEvent;

  it('drops what is not a step, and hands a failed step back to the queue', async () => {
    const log = vi.fn();
    const requests = store({
      get: vi.fn(async () => {
        throw new Error('DynamoDB is down');
      }),
    });
    const worker = makePersonRequestWorker({
      requests,
      queue: { send: vi.fn() },
      ledger: { walk: vi.fn() },
      nonprofits: { get: vi.fn() },
      suppressions: { get: vi.fn() },
      log,
    });
    const result = await worker(
      event('not json', JSON.stringify({ step: 'start', request_id: REQUEST_ID })),
      lambdaContext,
    );
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'm1' }] });
    expect(log).toHaveBeenCalledWith('ERROR', expect.stringContaining('not a person request step'), {
      message_id: 'm0',
    });
  });
});
