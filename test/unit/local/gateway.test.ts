import { describe, expect, it, vi } from 'vitest';
import type { ApiModel, GatewayResponseModel } from '../../../local/api-model';
import type { InvokeResult } from '../../../local/functions';
import { type GatewayRequest, LocalGateway } from '../../../local/gateway';

const KEY = 'a'.repeat(40);
const OTHER_KEY = 'b'.repeat(40);

function model(overrides: Partial<ApiModel> = {}): ApiModel {
  return {
    restApiId: 'api',
    stageName: 'v1',
    routes: [
      {
        method: 'GET',
        resourcePath: '/items',
        resourceId: 'r1',
        functionLogicalId: 'List',
        apiKeyRequired: true,
      },
      {
        method: 'GET',
        resourcePath: '/items/{id}',
        resourceId: 'r2',
        functionLogicalId: 'Get',
        apiKeyRequired: true,
      },
      {
        method: 'GET',
        resourcePath: '/items/special',
        resourceId: 'r3',
        functionLogicalId: 'Special',
        apiKeyRequired: true,
      },
      {
        method: 'GET',
        resourcePath: '/health',
        resourceId: 'r4',
        functionLogicalId: 'Health',
        apiKeyRequired: false,
      },
    ],
    stageThrottles: new Map(),
    rateRules: [],
    apiKeys: [
      { logicalId: 'Key', id: 'key', enabled: true },
      { logicalId: 'Other', id: 'other', enabled: true },
    ],
    usagePlans: [
      {
        id: 'plan',
        throttle: { rateLimit: 1, burstLimit: 2 },
        quota: { limit: 100, period: 'DAY' },
        methodThrottles: new Map(),
        keyIds: new Set(['key', 'other']),
      },
    ],
    apiKeySource: 'HEADER',
    authorizers: new Map(),
    gatewayResponses: new Map(),
    ...overrides,
  };
}

const ok = (body: unknown = { ok: true }): InvokeResult => ({
  ok: true,
  value: { statusCode: 200, body: JSON.stringify(body) },
});

function gateway(
  options: {
    model?: ApiModel;
    invoke?: (id: string, event: unknown) => Promise<InvokeResult>;
    now?: () => number;
  } = {},
) {
  const invoke = vi.fn(options.invoke ?? (async () => ok()));
  const instance = new LocalGateway({
    model: options.model ?? model(),
    keyValues: new Map([
      ['key', KEY],
      ['other', OTHER_KEY],
    ]),
    invoke,
    now: options.now ?? (() => 0),
    integrationTimeoutMs: 50,
  });
  return { instance, invoke };
}

function request(
  path: string,
  options: { method?: string; key?: string; body?: string; keys?: string[] } = {},
): GatewayRequest {
  const keys = options.keys ?? (options.key ? [options.key] : []);
  const headers = [...keys.flatMap((key) => ['X-Api-Key', key]), 'User-Agent', 'test'];
  return {
    method: options.method ?? 'GET',
    url: path,
    rawHeaders: headers,
    body: Buffer.from(options.body ?? ''),
    sourceIp: '127.0.0.1',
  };
}

const parse = (response: { body: Buffer }) => JSON.parse(response.body.toString()) as unknown;

describe('LocalGateway', () => {
  it('answers 403 Missing Authentication Token for unknown routes, methods and stages', async () => {
    const { instance, invoke } = gateway();
    for (const [path, method] of [
      ['/v1/nope', 'GET'],
      ['/v1/items', 'DELETE'],
      ['/v2/items', 'GET'],
      ['/items', 'GET'],
      ['/v1/items/1/2', 'GET'],
    ] as const) {
      const response = await instance.handle(request(path, { method, key: KEY }));
      expect(response.statusCode).toBe(403);
      expect(parse(response)).toEqual({ message: 'Missing Authentication Token' });
    }
    expect(invoke).not.toHaveBeenCalled();
  });

  it('answers 403 Forbidden without a key, with an unknown key, or with a key in no plan', async () => {
    const noPlan = model();
    noPlan.usagePlans[0]?.keyIds.delete('other');
    const { instance, invoke } = gateway({ model: noPlan });
    for (const key of [undefined, 'wrong', OTHER_KEY]) {
      const response = await instance.handle(request('/v1/items', { key }));
      expect(response.statusCode).toBe(403);
      expect(parse(response)).toEqual({ message: 'Forbidden' });
    }
    expect(invoke).not.toHaveBeenCalled();
  });

  it('lets keyless routes through without a key', async () => {
    const { instance } = gateway();
    expect((await instance.handle(request('/v1/health'))).statusCode).toBe(200);
  });

  it('prefers literal segments over parameters and passes path parameters still encoded', async () => {
    const { instance, invoke } = gateway();
    await instance.handle(request('/v1/items/special', { key: KEY }));
    await instance.handle(request('/v1/items/a%40b.org?x=1&x=2&y=%20z', { key: KEY }));

    expect(invoke.mock.calls.map(([id]) => id)).toEqual(['Special', 'Get']);
    expect(invoke.mock.calls[1]?.[1]).toMatchObject({
      resource: '/items/{id}',
      path: '/items/a%40b.org',
      httpMethod: 'GET',
      pathParameters: { id: 'a%40b.org' },
      queryStringParameters: { x: '2', y: ' z' },
      multiValueQueryStringParameters: { x: ['1', '2'], y: [' z'] },
      headers: { 'X-Api-Key': KEY, 'User-Agent': 'test' },
      requestContext: {
        stage: 'v1',
        resourcePath: '/items/{id}',
        identity: { apiKey: KEY, apiKeyId: 'key' },
      },
    });
  });

  // Found by the fuzzer: `toString` made the gateway fail (502) building the query maps.
  it('passes query and header names that are also object members as plain data', async () => {
    const { instance, invoke } = gateway();
    const response = await instance.handle({
      ...request('/v1/items?toString=1&__proto__=2&constructor=3&constructor=4', { key: KEY }),
      rawHeaders: ['X-Api-Key', KEY, 'toString', 'a', '__proto__', 'b'],
    });

    expect(response.statusCode).toBe(200);
    const event = invoke.mock.calls[0]?.[1] as Record<string, Record<string, unknown>>;
    expect(Object.entries(event.queryStringParameters ?? {})).toEqual([
      ['toString', '1'],
      ['__proto__', '2'],
      ['constructor', '4'],
    ]);
    expect(Object.entries(event.multiValueQueryStringParameters ?? {})).toContainEqual([
      'constructor',
      ['3', '4'],
    ]);
    expect(Object.entries(event.headers ?? {})).toContainEqual(['__proto__', 'b']);
    expect(Object.getPrototypeOf(event.queryStringParameters)).toBe(Object.prototype);
  });

  it('answers as API Gateway past its URL and header limits, in JSON', async () => {
    const { instance, invoke } = gateway();
    const longUrl = await instance.handle(request(`/v1/items?q=${'x'.repeat(8_200)}`, { key: KEY }));
    expect(longUrl.statusCode).toBe(414);
    expect(parse(longUrl)).toEqual({ message: 'Request-URI Too Long' });
    const bigHeaders = await instance.handle({
      ...request('/v1/items', { key: KEY }),
      rawHeaders: ['X-Api-Key', KEY, 'X-Big', 'y'.repeat(10_300)],
    });
    expect(bigHeaders.statusCode).toBe(431);
    expect(parse(bigHeaders)).toEqual({ message: 'Request Header Fields Too Large' });
    expect(invoke).not.toHaveBeenCalled();
  });

  it("throttles each key with its plan's token bucket", async () => {
    let now = 0;
    const { instance } = gateway({ now: () => now });
    const statuses = async (key: string, count: number) => {
      const codes: number[] = [];
      for (let n = 0; n < count; n++)
        codes.push((await instance.handle(request('/v1/items', { key }))).statusCode);
      return codes;
    };

    expect(await statuses(KEY, 3)).toEqual([200, 200, 429]);
    expect(parse(await instance.handle(request('/v1/items', { key: KEY })))).toEqual({
      message: 'Too Many Requests',
    });
    expect(await statuses(OTHER_KEY, 2)).toEqual([200, 200]);
    now = 1_000;
    expect(await statuses(KEY, 2)).toEqual([200, 429]);
  });

  it("shapes its own answers by the template's gateway responses: a type's headers and status, else DEFAULT_4XX's", async () => {
    const shaped = () =>
      model({
        gatewayResponses: new Map<string, GatewayResponseModel>([
          ['THROTTLED', { headers: { 'Retry-After': '1' } }],
          ['QUOTA_EXCEEDED', { headers: { 'Retry-After': '3600' } }],
          ['DEFAULT_4XX', { headers: { 'X-Default': 'yes' } }],
          ['INVALID_API_KEY', { statusCode: 401, headers: {} }],
        ]),
      });
    const send = (instance: LocalGateway, key?: string) =>
      instance.handle(request('/v1/items', key === undefined ? {} : { key }));

    const fast = gateway({ model: shaped(), now: () => 0 }).instance;
    await send(fast, KEY);
    await send(fast, KEY);
    const throttled = await send(fast, KEY);
    expect([throttled.statusCode, parse(throttled), throttled.headers['Retry-After']]).toEqual([
      429,
      { message: 'Too Many Requests' },
      '1',
    ]);

    const small = shaped();
    const plan = small.usagePlans[0];
    if (plan) plan.quota = { limit: 1, period: 'DAY' };
    const spent = gateway({ model: small, now: () => 0 }).instance;
    await send(spent, KEY);
    const past = await send(spent, KEY);
    expect([past.statusCode, parse(past), past.headers['Retry-After']]).toEqual([
      429,
      { message: 'Limit Exceeded' },
      '3600',
    ]);

    expect((await send(fast)).statusCode).toBe(401);
    const unknown = await fast.handle(request('/v1/nothing-here', { key: KEY }));
    expect([unknown.statusCode, unknown.headers['X-Default']]).toEqual([403, 'yes']);
  });

  it('uses a method throttle of the plan instead of its default for that method', async () => {
    const strict = model();
    strict.usagePlans[0]?.methodThrottles.set('/items/{id}/GET', { rateLimit: 1, burstLimit: 1 });
    const { instance } = gateway({ model: strict });

    expect((await instance.handle(request('/v1/items/1', { key: KEY }))).statusCode).toBe(200);
    expect((await instance.handle(request('/v1/items/1', { key: KEY }))).statusCode).toBe(429);
    expect((await instance.handle(request('/v1/items', { key: KEY }))).statusCode).toBe(200);
  });

  it('applies the stage throttle to all clients together, per method as API Gateway does', async () => {
    const { instance } = gateway({
      model: model({ stageThrottles: new Map([['*', { rateLimit: 1, burstLimit: 1 }]]) }),
    });

    expect((await instance.handle(request('/v1/items', { key: KEY }))).statusCode).toBe(200);
    expect((await instance.handle(request('/v1/items', { key: OTHER_KEY }))).statusCode).toBe(429);
    // Another method has a bucket of its own at the default rate: the flood above does not take it.
    expect((await instance.handle(request('/v1/items/1', { key: KEY }))).statusCode).toBe(200);
    expect((await instance.handle(request('/v1/items/2', { key: OTHER_KEY }))).statusCode).toBe(429);
  });

  it("applies the web ACL's rate-based rules per client address, before anything else, until the window lets it go", async () => {
    let now = 0;
    const flooded = model({
      rateRules: [
        {
          name: 'ItemsPerIp',
          priority: 1,
          limit: 3,
          windowSeconds: 60,
          pathPattern: /\/items\/?$/,
          answer: {
            statusCode: 429,
            headers: { 'retry-after': '60', 'content-type': 'application/json' },
            body: '{"message":"Too Many Requests"}',
          },
        },
      ],
    });
    const { instance, invoke } = gateway({ model: flooded, now: () => now });
    // A second apart: the key's plan (1 a second) never says no here; only the rule does.
    const from = (sourceIp: string, path = '/v1/items') => {
      now += 1_000;
      return instance.handle({ ...request(path, { key: KEY }), sourceIp });
    };
    const statuses: number[] = [];
    for (let n = 0; n < 4; n++) statuses.push((await from('127.0.0.2')).statusCode);
    // Written another way (an escape, capitals, a trailing slash): the same path to the rule.
    statuses.push((await from('127.0.0.2', '/v1/IT%45MS/')).statusCode);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const blocked = await from('127.0.0.2');
    expect(blocked.headers).toMatchObject({ 'retry-after': '60' });
    expect(parse(blocked)).toEqual({ message: 'Too Many Requests' });
    // Another client is not held back, nor is the same client on a path outside the rule's scope.
    expect((await from('127.0.0.1')).statusCode).toBe(200);
    expect((await from('127.0.0.2', '/v1/items/1')).statusCode).toBe(200);
    expect(invoke).toHaveBeenCalledTimes(5);
    // Once its requests in the window are under the limit again, it is let through.
    now += 60_000;
    expect((await from('127.0.0.2')).statusCode).toBe(200);
  });

  it("lets a method's own stage setting take the default's place for that method", async () => {
    const { instance } = gateway({
      model: model({
        stageThrottles: new Map([
          ['*', { rateLimit: 1, burstLimit: 1 }],
          ['/items/GET', { rateLimit: 1, burstLimit: 3 }],
        ]),
      }),
    });
    const statuses: number[] = [];
    // Two keys in turn, each within its plan's burst of 2: only the stage's method bucket (3) says no.
    for (const key of [KEY, OTHER_KEY, KEY, OTHER_KEY])
      statuses.push((await instance.handle(request('/v1/items', { key }))).statusCode);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it('answers 429 Limit Exceeded past the quota, counting only admitted requests', async () => {
    let now = 0;
    const small = model();
    const plan = small.usagePlans[0];
    if (plan) plan.quota = { limit: 3, period: 'DAY' };
    const { instance, invoke } = gateway({ model: small, now: () => now });
    const answers: unknown[] = [];
    for (let n = 0; n < 6; n++) {
      now += 400;
      answers.push(parse(await instance.handle(request('/v1/items', { key: KEY }))));
    }

    expect(invoke).toHaveBeenCalledTimes(3);
    expect(answers.at(-1)).toEqual({ message: 'Limit Exceeded' });
    expect(answers).toContainEqual({ message: 'Too Many Requests' });
  });

  it('answers 502 when the function fails or returns no proxy response', async () => {
    for (const result of [
      { ok: false, error: { errorType: 'Error', errorMessage: 'boom' } },
      { ok: true, value: 'not a response' },
      { ok: true, value: { body: '{}' } },
    ] as InvokeResult[]) {
      const { instance } = gateway({ invoke: async () => result });
      const response = await instance.handle(request('/v1/items', { key: KEY }));
      expect(response.statusCode).toBe(502);
      expect(parse(response)).toEqual({ message: 'Internal server error' });
    }
  });

  it('prints one readable line naming the route, the function and the reason for each 502 and 504', async () => {
    const lines: string[] = [];
    const failing = new LocalGateway({
      model: model(),
      keyValues: new Map([['key', KEY]]),
      invoke: async () => ({
        ok: false,
        error: { errorType: 'Function.ResponseSizeTooLarge', errorMessage: 'Response payload size exceeded' },
      }),
      integrationTimeoutMs: 50,
      onError: (line) => lines.push(line),
    });
    expect((await failing.handle(request('/v1/items', { key: KEY }))).statusCode).toBe(502);
    const hanging = new LocalGateway({
      model: model(),
      keyValues: new Map([['key', KEY]]),
      invoke: () => new Promise(() => undefined),
      integrationTimeoutMs: 50,
      onError: (line) => lines.push(line),
    });
    expect((await hanging.handle(request('/v1/items/7', { key: KEY }))).statusCode).toBe(504);
    expect(lines).toEqual([
      '502 GET /items → List: Function.ResponseSizeTooLarge: Response payload size exceeded',
      "504 GET /items/{id} → Get: no answer within API Gateway's 0.05 s",
    ]);
  });

  it('refuses a request body over API Gateway’s 10 MB with 413, without calling the function', async () => {
    const { instance, invoke } = gateway();
    const response = await instance.handle(
      request('/v1/items', { key: KEY, method: 'GET', body: 'x'.repeat(10 * 1024 * 1024 + 1) }),
    );
    expect(response.statusCode).toBe(413);
    expect(parse(response)).toEqual({ message: 'Request Too Long' });
    expect(invoke).not.toHaveBeenCalled();
  });

  it('answers 504 when the integration takes longer than its timeout', async () => {
    const { instance } = gateway({ invoke: () => new Promise(() => undefined) });
    const response = await instance.handle(request('/v1/items', { key: KEY }));
    expect(response.statusCode).toBe(504);
    expect(parse(response)).toEqual({ message: 'Endpoint request timed out' });
  });

  it("returns the function's status, headers and body", async () => {
    const { instance } = gateway({
      invoke: async () => ({
        ok: true,
        value: { statusCode: 201, headers: { Location: '/items/1' }, body: '{"id":1}' },
      }),
    });
    const response = await instance.handle(request('/v1/items', { key: KEY }));
    expect(response.statusCode).toBe(201);
    expect(response.headers.location).toBe('/items/1');
    expect(parse(response)).toEqual({ id: 1 });
  });

  describe('with a REQUEST authorizer and the key from it (API key source AUTHORIZER)', () => {
    /** Routes behind the authorizer; the authorizer's answer depends on the key and the route. */
    const authorized = () =>
      model({
        apiKeySource: 'AUTHORIZER',
        routes: model().routes.map((route) =>
          route.apiKeyRequired ? { ...route, authorizerId: 'Auth' } : route,
        ),
        authorizers: new Map([
          [
            'Auth',
            {
              id: 'Auth',
              functionLogicalId: 'Authorize',
              identitySources: ['method.request.header.x-api-key', 'context.resourcePath'],
              ttlSeconds: 300,
            },
          ],
        ]),
        gatewayResponses: new Map<string, GatewayResponseModel>([
          ['UNAUTHORIZED', { statusCode: 403, headers: {}, template: '{"message":"Forbidden"}' }],
          [
            'ACCESS_DENIED',
            { statusCode: 403, headers: {}, template: '{"message":"$context.authorizer.message"}' },
          ],
        ]),
      });
    /** Allows KEY on every route but `/items/special`, OTHER_KEY nowhere; hands KEY to the usage plan. */
    const authorize = async (event: unknown): Promise<InvokeResult> => {
      const { headers, methodArn, requestContext } = event as {
        headers: Record<string, string>;
        methodArn: string;
        requestContext: { resourcePath: string };
      };
      const key = headers['X-Api-Key'];
      const allowed = key === KEY && requestContext.resourcePath !== '/items/special';
      return {
        ok: true,
        value: {
          principalId: key === KEY ? 'key' : 'anonymous',
          policyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Action: 'execute-api:Invoke',
                Effect: allowed ? 'Allow' : 'Deny',
                Resource: allowed ? [methodArn.replace(/\/items.*$/, '/items*')] : [methodArn],
              },
            ],
          },
          context: allowed
            ? { keyId: 'key', scopes: 'read' }
            : { message: `no ${requestContext.resourcePath}` },
          ...(allowed ? { usageIdentifierKey: KEY } : {}),
        },
      };
    };
    const setUp = () =>
      gateway({
        model: authorized(),
        invoke: async (id, event) => (id === 'Authorize' ? authorize(event) : ok()),
      });

    it('runs the route with the key the authorizer handed over, and passes its context on', async () => {
      const { instance, invoke } = setUp();
      expect((await instance.handle(request('/v1/items/7', { key: KEY }))).statusCode).toBe(200);
      const routeEvent = invoke.mock.calls.find(([id]) => id === 'Get')?.[1] as {
        requestContext: { identity: { apiKeyId: string }; authorizer: Record<string, unknown> };
      };
      expect(routeEvent.requestContext.identity.apiKeyId).toBe('key');
      expect(routeEvent.requestContext.authorizer).toMatchObject({
        keyId: 'key',
        scopes: 'read',
        principalId: 'key',
      });
      const authorizerEvent = invoke.mock.calls.find(([id]) => id === 'Authorize')?.[1];
      expect(authorizerEvent).toMatchObject({
        type: 'REQUEST',
        methodArn: 'arn:aws:execute-api:us-east-1:000000000000:api/v1/GET/items/7',
        resource: '/items/{id}',
      });
    });

    it("answers 403 with the authorizer's reason for a denied route, through the ACCESS_DENIED template", async () => {
      const { instance, invoke } = setUp();
      const response = await instance.handle(request('/v1/items/special', { key: KEY }));
      expect(response.statusCode).toBe(403);
      expect(parse(response)).toEqual({ message: 'no /items/special' });
      expect(invoke.mock.calls.map(([id]) => id)).toEqual(['Authorize']);
    });

    it('answers a missing identity source with the UNAUTHORIZED response, without calling the authorizer', async () => {
      const { instance, invoke } = setUp();
      const response = await instance.handle(request('/v1/items'));
      expect(response.statusCode).toBe(403);
      expect(parse(response)).toEqual({ message: 'Forbidden' });
      expect(invoke).not.toHaveBeenCalled();
    });

    it('asks the authorizer once per identity within its TTL, and again after it', async () => {
      let now = 0;
      const { instance, invoke } = gateway({
        model: authorized(),
        invoke: async (id, event) => (id === 'Authorize' ? authorize(event) : ok()),
        now: () => now,
      });
      await instance.handle(request('/v1/items/1', { key: KEY }));
      await instance.handle(request('/v1/items/2', { key: KEY }));
      await instance.handle(request('/v1/items', { key: KEY }));
      const asked = () => invoke.mock.calls.filter(([id]) => id === 'Authorize').length;
      // Keyed by the key and the resource path: /items/{id} once, /items once.
      expect(asked()).toBe(2);
      now += 301_000;
      await instance.handle(request('/v1/items/3', { key: KEY }));
      expect(asked()).toBe(3);
    });

    it('answers 403 Forbidden when the authorizer allows but hands over no key of a plan', async () => {
      const { instance } = gateway({
        model: authorized(),
        invoke: async (id, event) => {
          if (id !== 'Authorize') return ok();
          const answer = (await authorize(event)) as { ok: true; value: Record<string, unknown> };
          return { ok: true, value: { ...answer.value, usageIdentifierKey: 'not-a-key' } };
        },
      });
      const response = await instance.handle(request('/v1/items', { key: KEY }));
      expect(response.statusCode).toBe(403);
      expect(parse(response)).toEqual({ message: 'Forbidden' });
    });

    it('answers 500 when the authorizer fails', async () => {
      const { instance } = gateway({
        model: authorized(),
        invoke: async () => ({ ok: false, error: { errorType: 'Error', errorMessage: 'boom' } }),
      });
      expect((await instance.handle(request('/v1/items', { key: KEY }))).statusCode).toBe(500);
    });
  });
});
