import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type {
  ApiKeyModel,
  ApiModel,
  GatewayResponseModel,
  Route,
  Throttle,
  UsagePlanModel,
} from './api-model';
import { type AuthorizerDecision, LocalAuthorizers } from './authorizers';
import type { InvokeResult } from './functions';
import { LOCAL_ACCOUNT, LOCAL_REGION } from './template';
import { Quota, TokenBucket } from './token-bucket';
import { RateRules } from './waf';

/** API Gateway's limits and its own answers, as clients meet them in AWS. */
const MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;
/** API Gateway's quotas: a URL of at most 8,192 characters, and 10,240 bytes of request line and header values. */
const MAX_URL_LENGTH = 8_192;
const MAX_REQUEST_LINE_AND_HEADERS_BYTES = 10_240;
/**
 * Node refuses headers past 16 KB before a handler sees them, with a bare 431. Above API Gateway's
 * limits anyway, but read so the gateway answers as API Gateway does, in JSON.
 */
const NODE_MAX_HEADER_BYTES = 64 * 1024;
const INTEGRATION_TIMEOUT_MS = 29_000;
/** Each with its gateway response type, whose template settings (headers, status) apply to it. */
const ANSWERS = {
  missingToken: {
    status: 403,
    message: 'Missing Authentication Token',
    type: 'MISSING_AUTHENTICATION_TOKEN',
  },
  forbidden: { status: 403, message: 'Forbidden', type: 'INVALID_API_KEY' },
  unauthorized: { status: 401, message: 'Unauthorized', type: 'UNAUTHORIZED' },
  accessDenied: {
    status: 403,
    message: 'User is not authorized to access this resource',
    type: 'ACCESS_DENIED',
  },
  explicitDeny: {
    status: 403,
    message: 'User is not authorized to access this resource with an explicit deny',
    type: 'ACCESS_DENIED',
  },
  authorizerFailed: { status: 500, message: 'Internal server error', type: 'AUTHORIZER_FAILURE' },
  throttled: { status: 429, message: 'Too Many Requests', type: 'THROTTLED' },
  quotaExceeded: { status: 429, message: 'Limit Exceeded', type: 'QUOTA_EXCEEDED' },
  tooLarge: { status: 413, message: 'Request Too Long', type: 'REQUEST_TOO_LARGE' },
  urlTooLong: { status: 414, message: 'Request-URI Too Long', type: 'DEFAULT_4XX' },
  headersTooLarge: { status: 431, message: 'Request Header Fields Too Large', type: 'DEFAULT_4XX' },
  badRequest: { status: 400, message: 'Bad Request', type: 'DEFAULT_4XX' },
  integrationFailed: { status: 502, message: 'Internal server error', type: 'INTEGRATION_FAILURE' },
  timedOut: { status: 504, message: 'Endpoint request timed out', type: 'INTEGRATION_TIMEOUT' },
} as const;
type Answer = (typeof ANSWERS)[keyof typeof ANSWERS];

export interface GatewayRequest {
  method: string;
  /** The path and query string as received, percent-encoded. */
  url: string;
  /** Header names as the client sent them, in order. */
  rawHeaders: string[];
  body: Buffer;
  sourceIp: string;
}

export interface GatewayResponse {
  statusCode: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

export interface GatewayOptions {
  model: ApiModel;
  /** The value of each API key, by key id (API Gateway generates values; locally they are kept on disk). */
  keyValues: Map<string, string>;
  invoke: (functionLogicalId: string, event: unknown) => Promise<InvokeResult>;
  /** One readable line for each 5xx the gateway itself answers: the route, the function and why. */
  onError?: (line: string) => void;
  now?: () => number;
  integrationTimeoutMs?: number;
  /** Paths the runtime itself answers (under `/_local/`), outside the API and its keys. */
  localRoutes?: Map<string, () => GatewayResponse>;
}

/** Where the functions' SDKs go for AWS services with no local stand-in: an answer, never the internet. */
export const UNSUPPORTED_SERVICE_PATH = '/_local/unsupported-service';

interface Match {
  route: Route;
  pathParameters: Record<string, string> | null;
}

/** What the authorizer of the route allowed, for the route to see. */
type Allowed = Extract<AuthorizerDecision, { kind: 'allow' }>;

/**
 * A local stand-in for API Gateway's REST API: routes from the template, Lambda REQUEST authorizers,
 * API keys and usage plans with API Gateway's token-bucket throttling and daily quotas, Lambda
 * proxy events, and API Gateway's own answers (401, 403, 429, 502, 504) where it would give them.
 */
export class LocalGateway {
  private readonly keysByValue = new Map<string, ApiKeyModel>();
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly quotas = new Map<string, Quota>();
  private readonly now: () => number;
  private readonly authorizers: LocalAuthorizers;
  private readonly waf: RateRules;

  constructor(private readonly options: GatewayOptions) {
    this.now = options.now ?? Date.now;
    this.waf = new RateRules(options.model.rateRules, this.now);
    this.authorizers = new LocalAuthorizers(options.model.authorizers, options.invoke, this.now);
    for (const key of options.model.apiKeys) {
      const value = options.keyValues.get(key.id);
      if (value) this.keysByValue.set(value, key);
    }
  }

  async handle(request: GatewayRequest): Promise<GatewayResponse> {
    const requestId = randomUUID();
    const { model } = this.options;
    if (request.url.length > MAX_URL_LENGTH) return this.answer(ANSWERS.urlTooLong, requestId);
    const headerBytes = request.rawHeaders.reduce((sum, part) => sum + Buffer.byteLength(part, 'latin1'), 0);
    if (request.method.length + request.url.length + headerBytes > MAX_REQUEST_LINE_AND_HEADERS_BYTES)
      return this.answer(ANSWERS.headersTooLarge, requestId);
    const url = new URL(request.url, 'http://localhost');
    const local = this.options.localRoutes?.get(url.pathname);
    if (local) return local();
    if (url.pathname.startsWith(UNSUPPORTED_SERVICE_PATH)) {
      return {
        statusCode: 501,
        headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': 'UnsupportedOperation' },
        body: Buffer.from(
          JSON.stringify({
            __type: 'UnsupportedOperation',
            message: 'This AWS service has no local stand-in',
          }),
        ),
      };
    }
    // WAF stands in front of API Gateway: a client over a rate-based rule's limit is answered there.
    const blocked = this.waf.check(request.sourceIp, url.pathname);
    if (blocked)
      return {
        statusCode: blocked.answer.statusCode,
        headers: { ...blocked.answer.headers },
        body: Buffer.from(blocked.answer.body),
      };
    const stagePrefix = `/${model.stageName}`;
    const inStage = url.pathname === stagePrefix || url.pathname.startsWith(`${stagePrefix}/`);
    const path = inStage ? url.pathname.slice(stagePrefix.length) || '/' : url.pathname;
    const match = inStage ? this.match(request.method, path) : undefined;
    if (!match) return this.answer(ANSWERS.missingToken, requestId);

    const { route } = match;
    const headers = headerMaps(request.rawHeaders);
    const now = this.now();
    const requestContext = this.requestContext(request, path, route, headers, requestId, now);
    const query = groupValues([...url.searchParams]);
    let allowed: Allowed | undefined;
    if (route.authorizerId) {
      const decision = await this.authorizers.decide({
        route,
        path,
        methodArn: `arn:aws:execute-api:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${model.restApiId}/${model.stageName}/${request.method}${path}`,
        headers,
        query,
        pathParameters: match.pathParameters,
        requestContext,
      });
      if (decision.kind === 'unauthorized') return this.answer(ANSWERS.unauthorized, requestId);
      if (decision.kind === 'denied')
        return this.answer(decision.explicit ? ANSWERS.explicitDeny : ANSWERS.accessDenied, requestId, {
          authorizer: decision.context,
        });
      if (decision.kind === 'failed') {
        this.options.onError?.(
          `500 ${route.method} ${route.resourcePath}: authorizer failed: ${decision.reason}`,
        );
        return this.answer(ANSWERS.authorizerFailed, requestId);
      }
      allowed = decision;
    }
    // With key source AUTHORIZER, the key a usage plan meters is the one the authorizer handed over.
    const apiKeyValue =
      model.apiKeySource === 'AUTHORIZER' ? allowed?.usageIdentifierKey : headers.lowerCase.get('x-api-key');
    const apiKey = apiKeyValue === undefined ? undefined : this.keysByValue.get(apiKeyValue);
    let plan: UsagePlanModel | undefined;
    if (route.apiKeyRequired) {
      plan = apiKey?.enabled
        ? model.usagePlans.find((candidate) => candidate.keyIds.has(apiKey.id))
        : undefined;
      if (!apiKey || !plan) return this.answer(ANSWERS.forbidden, requestId);
    }
    const throttled = this.admit(route, plan, apiKey);
    if (throttled) return this.answer(throttled, requestId);
    if (request.body.length > MAX_PAYLOAD_BYTES) return this.answer(ANSWERS.tooLarge, requestId);

    const event = this.proxyEvent(request, query, path, match, headers, requestContext, {
      apiKey,
      apiKeyValue,
      allowed,
    });
    const result = await this.invokeWithTimeout(route.functionLogicalId, event);
    if (result === 'timeout') {
      this.options.onError?.(
        `504 ${route.method} ${route.resourcePath} → ${route.functionLogicalId}: no answer within API Gateway's ${(this.options.integrationTimeoutMs ?? INTEGRATION_TIMEOUT_MS) / 1000} s`,
      );
      return this.answer(ANSWERS.timedOut, requestId);
    }
    return this.toResponse(route, result, requestId);
  }

  /** API Gateway's own answer of this kind, as the template's gateway responses shape it. */
  private answer(kind: Answer, requestId: string, context: TemplateContext = {}): GatewayResponse {
    return answer(kind, requestId, this.options.model.gatewayResponses, context);
  }

  listen(port: number, host = '127.0.0.1'): Promise<Server> {
    const server = createServer({ maxHeaderSize: NODE_MAX_HEADER_BYTES }, (incoming, outgoing) => {
      readBody(incoming)
        .then((body) =>
          this.handle({
            method: incoming.method ?? 'GET',
            url: incoming.url ?? '/',
            rawHeaders: incoming.rawHeaders,
            body,
            sourceIp: incoming.socket.remoteAddress ?? '127.0.0.1',
          }),
        )
        .then(
          (response) => {
            outgoing.writeHead(response.statusCode, response.headers);
            outgoing.end(response.body);
          },
          (error: unknown) => {
            this.options.onError?.(
              `502 ${incoming.method} ${incoming.url}: gateway failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
            );
            const failed = this.answer(ANSWERS.integrationFailed, randomUUID());
            outgoing.writeHead(failed.statusCode, failed.headers);
            outgoing.end(failed.body);
          },
        );
    });
    // Idle connections stay open longer than clients keep them (undici: 4 s), so the client always
    // closes first; a server closing at the same moment makes a reused socket fail ("other side closed").
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    // A request Node cannot parse (or headers past even its raised limit) gets a JSON answer too.
    server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) return socket.destroy();
      const { status, message } =
        error.code === 'HPE_HEADER_OVERFLOW' ? ANSWERS.headersTooLarge : ANSWERS.badRequest;
      const body = JSON.stringify({ message });
      socket.end(
        `HTTP/1.1 ${status} ${message}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(server));
    });
  }

  /** Most specific route first, as API Gateway matches: literal segments beat `{parameters}`. */
  private match(method: string, path: string): Match | undefined {
    const segments = path.split('/').filter(Boolean);
    let best: (Match & { score: number }) | undefined;
    for (const route of this.options.model.routes) {
      if (route.method !== method && route.method !== 'ANY') continue;
      const matched = matchPath(route.resourcePath.split('/').filter(Boolean), segments);
      if (!matched) continue;
      const score = matched.score * 2 + (route.method === method ? 1 : 0);
      if (!best || score > best.score) {
        const hasParameters = Object.keys(matched.parameters).length > 0;
        best = { route, pathParameters: hasParameters ? matched.parameters : null, score };
      }
    }
    return best && { route: best.route, pathParameters: best.pathParameters };
  }

  /**
   * Quota first (a request past it answers `Limit Exceeded`), then the key's bucket for this method
   * or its plan, then the stage's bucket for this method, shared by all clients. Only admitted
   * requests are counted.
   */
  private admit(
    route: Route,
    plan: UsagePlanModel | undefined,
    apiKey: ApiKeyModel | undefined,
  ): (typeof ANSWERS)['throttled' | 'quotaExceeded'] | undefined {
    const methodKey = `${route.resourcePath}/${route.method}`;
    const quota =
      plan?.quota && apiKey
        ? this.quota(`${plan.id}:${apiKey.id}`, plan.quota.limit, plan.quota.period)
        : undefined;
    if (quota && !quota.hasRoom()) return ANSWERS.quotaExceeded;
    const limits: [string, Throttle | undefined][] = [];
    if (plan && apiKey) {
      const methodThrottle = plan.methodThrottles.get(methodKey);
      limits.push(
        methodThrottle
          ? [`plan:${plan.id}:${apiKey.id}:${methodKey}`, methodThrottle]
          : [`plan:${plan.id}:${apiKey.id}`, plan.throttle],
      );
    }
    // As API Gateway applies a stage's method settings: the default (`/*/*`) gives each method a
    // bucket of its own at that rate, and a method's own setting takes its place for that method.
    const stage = this.options.model.stageThrottles;
    limits.push([`stage:${methodKey}`, stage.get(methodKey) ?? stage.get('*')]);
    for (const [id, throttle] of limits) {
      if (throttle && !this.bucket(id, throttle).tryTake()) return ANSWERS.throttled;
    }
    quota?.take();
    return undefined;
  }

  private bucket(id: string, throttle: Throttle): TokenBucket {
    let bucket = this.buckets.get(id);
    if (!bucket) {
      bucket = new TokenBucket(throttle.rateLimit, throttle.burstLimit, this.now);
      this.buckets.set(id, bucket);
    }
    return bucket;
  }

  private quota(id: string, limit: number, period: 'DAY' | 'WEEK' | 'MONTH'): Quota {
    let quota = this.quotas.get(id);
    if (!quota) {
      quota = new Quota(limit, period, this.now);
      this.quotas.set(id, quota);
    }
    return quota;
  }

  /** The request's context as API Gateway gives it to authorizers and routes, before a key is known. */
  private requestContext(
    request: GatewayRequest,
    path: string,
    route: Route,
    headers: ReturnType<typeof headerMaps>,
    requestId: string,
    now: number,
  ) {
    const { model } = this.options;
    return {
      accountId: LOCAL_ACCOUNT,
      apiId: model.restApiId,
      resourceId: route.resourceId,
      resourcePath: route.resourcePath,
      httpMethod: request.method,
      path: `/${model.stageName}${path}`,
      stage: model.stageName,
      protocol: 'HTTP/1.1',
      requestId,
      extendedRequestId: requestId,
      requestTime: new Date(now).toUTCString(),
      requestTimeEpoch: now,
      domainName: headers.lowerCase.get('host') ?? 'localhost',
      identity: {
        apiKey: null as string | null,
        apiKeyId: null as string | null,
        sourceIp: request.sourceIp,
        userAgent: headers.lowerCase.get('user-agent') ?? null,
        accessKey: null,
        accountId: null,
        caller: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        user: null,
        userArn: null,
        clientCert: null,
      },
    };
  }

  private proxyEvent(
    request: GatewayRequest,
    query: ReturnType<typeof groupValues>,
    path: string,
    { route, pathParameters }: Match,
    headers: ReturnType<typeof headerMaps>,
    requestContext: ReturnType<LocalGateway['requestContext']>,
    caller: {
      apiKey: ApiKeyModel | undefined;
      apiKeyValue: string | undefined;
      allowed: Allowed | undefined;
    },
  ) {
    const { single, multi } = query;
    const hasQuery = Object.keys(single).length > 0;
    const { apiKey, apiKeyValue, allowed } = caller;
    return {
      resource: route.resourcePath,
      path,
      httpMethod: request.method,
      headers: headers.single,
      multiValueHeaders: headers.multi,
      queryStringParameters: hasQuery ? single : null,
      multiValueQueryStringParameters: hasQuery ? multi : null,
      pathParameters,
      stageVariables: null,
      requestContext: {
        ...requestContext,
        identity: {
          ...requestContext.identity,
          apiKey: apiKey ? (apiKeyValue ?? null) : null,
          apiKeyId: apiKey?.id ?? null,
        },
        // What the authorizer returned: its context's values, its principal, as API Gateway passes them.
        authorizer: allowed
          ? { ...allowed.context, principalId: allowed.principalId, integrationLatency: 0 }
          : null,
      },
      body: request.body.length > 0 ? request.body.toString('utf8') : null,
      isBase64Encoded: false,
    };
  }

  private async invokeWithTimeout(
    functionLogicalId: string,
    event: unknown,
  ): Promise<InvokeResult | 'timeout'> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(
        () => resolve('timeout'),
        this.options.integrationTimeoutMs ?? INTEGRATION_TIMEOUT_MS,
      );
    });
    try {
      return await Promise.race([this.options.invoke(functionLogicalId, event), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A proxy integration's result must be `{ statusCode, headers?, body? }`; anything else is a 502. */
  private toResponse(route: Route, result: InvokeResult, requestId: string): GatewayResponse {
    const value = result.ok ? result.value : undefined;
    const valid =
      typeof value === 'object' &&
      value !== null &&
      'statusCode' in value &&
      Number.isInteger(Number(value.statusCode));
    if (!result.ok || !valid) {
      const reason = result.ok
        ? 'the function answered no { statusCode, body } (a malformed Lambda proxy response)'
        : `${result.error.errorType}: ${result.error.errorMessage}`;
      this.options.onError?.(
        `502 ${route.method} ${route.resourcePath} → ${route.functionLogicalId}: ${reason}`,
      );
      return this.answer(ANSWERS.integrationFailed, requestId);
    }
    const proxy = value as {
      statusCode: number | string;
      headers?: Record<string, unknown>;
      multiValueHeaders?: Record<string, unknown[]>;
      body?: unknown;
      isBase64Encoded?: boolean;
    };
    const headers: Record<string, string | string[]> = { 'content-type': 'application/json' };
    for (const [name, values] of Object.entries(proxy.multiValueHeaders ?? {}))
      headers[name.toLowerCase()] = values.map(String);
    for (const [name, headerValue] of Object.entries(proxy.headers ?? {}))
      headers[name.toLowerCase()] = String(headerValue);
    headers['x-amzn-requestid'] = requestId;
    const text = typeof proxy.body === 'string' ? proxy.body : '';
    return {
      statusCode: Number(proxy.statusCode),
      headers,
      body: proxy.isBase64Encoded ? Buffer.from(text, 'base64') : Buffer.from(text, 'utf8'),
    };
  }
}

/** Matches path segments against a resource path; the score counts literal segments. */
function matchPath(
  pattern: string[],
  segments: string[],
): { parameters: Record<string, string>; score: number } | undefined {
  const parameters: Record<string, string> = {};
  let score = 0;
  for (const [index, part] of pattern.entries()) {
    const greedy = /^\{(.+)\+\}$/.exec(part)?.[1];
    if (greedy) {
      if (segments.length <= index) return undefined;
      parameters[greedy] = segments.slice(index).join('/');
      return { parameters, score };
    }
    const segment = segments[index];
    if (segment === undefined) return undefined;
    const parameter = /^\{(.+)\}$/.exec(part)?.[1];
    if (parameter) parameters[parameter] = segment;
    else if (part === segment) score += 1;
    else return undefined;
  }
  return segments.length === pattern.length ? { parameters, score } : undefined;
}

/**
 * API Gateway's own answer, with what the template's gateway response of its type sets (its
 * headers, its status), or else that of `DEFAULT_4XX` / `DEFAULT_5XX`, as API Gateway falls back.
 */
function answer(
  { status, message, type }: Answer,
  requestId: string,
  responses: ReadonlyMap<string, GatewayResponseModel> = new Map(),
  context: TemplateContext = {},
): GatewayResponse {
  const configured = responses.get(type) ?? responses.get(status < 500 ? 'DEFAULT_4XX' : 'DEFAULT_5XX');
  return {
    statusCode: configured?.statusCode ?? status,
    headers: {
      ...configured?.headers,
      'content-type': 'application/json',
      'x-amzn-requestid': requestId,
      'x-amzn-errortype': errorType(status),
    },
    body: Buffer.from(
      configured?.template === undefined
        ? JSON.stringify({ message })
        : renderTemplate(configured.template, message, context),
    ),
  };
}

/** What a gateway response's template may read besides the error: the authorizer's context. */
interface TemplateContext {
  authorizer?: Record<string, string>;
}

/**
 * A gateway response's body template with the variables API Gateway fills in: the error's message,
 * quoted (`messageString`) or not, and `$context.authorizer.<key>`; a variable without a value is empty.
 */
function renderTemplate(template: string, message: string, { authorizer }: TemplateContext): string {
  return template
    .replaceAll('$context.error.messageString', JSON.stringify(message))
    .replaceAll('$context.error.message', message)
    .replace(/\$context\.authorizer\.([A-Za-z0-9_]+)/g, (_, key: string) => authorizer?.[key] ?? '');
}

function errorType(status: number): string {
  if (status === 401) return 'UnauthorizedException';
  if (status === 403) return 'ForbiddenException';
  if (status === 429) return 'TooManyRequestsException';
  if (status === 504) return 'IntegrationTimeout';
  return 'InternalServerErrorException';
}

/**
 * Names with their last value and with all of them, as the proxy event's single- and multi-value
 * maps. Grouped in Maps: a client's name such as `toString` or `__proto__` must be data, never an
 * object's own machinery.
 */
function groupValues(pairs: readonly (readonly [string, string])[]) {
  const values = new Map<string, string[]>();
  for (const [name, value] of pairs) values.set(name, [...(values.get(name) ?? []), value]);
  return {
    single: Object.fromEntries([...values].map(([name, all]) => [name, all.at(-1) as string])),
    multi: Object.fromEntries(values),
  };
}

function headerMaps(rawHeaders: string[]) {
  const pairs: [string, string][] = [];
  const lowerCase = new Map<string, string>();
  for (let index = 0; index + 1 < rawHeaders.length; index += 2) {
    const name = rawHeaders[index] as string;
    const value = rawHeaders[index + 1] as string;
    pairs.push([name, value]);
    lowerCase.set(name.toLowerCase(), value);
  }
  return { ...groupValues(pairs), lowerCase };
}

/** Reads the body, but stops buffering past API Gateway's payload limit (the request is refused anyway). */
function readBody(incoming: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    incoming.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_PAYLOAD_BYTES + 1) chunks.push(chunk);
    });
    incoming.on('end', () => resolve(Buffer.concat(chunks)));
    incoming.on('error', reject);
  });
}
