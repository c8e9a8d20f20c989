import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { Actor } from './audit/audit';
import { isScope, type Scope } from './auth/scopes';
import { AppError, type FieldProblem, ForbiddenError, ValidationError } from './errors';
import { logger, telemetry } from './observability/telemetry';
import type * as z from './zod';

export type ApiEvent = APIGatewayProxyEvent;
export type ApiResult = APIGatewayProxyResult;
export type ApiRoute = (event: ApiEvent, context: Context) => Promise<ApiResult>;

const JSON_HEADERS = { 'content-type': 'application/json' };
/** Problems listed at most in an error's `details`; `details_total` says how many there were. */
export const MAX_DETAILS = 20;

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): ApiResult {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

export function noContent(): ApiResult {
  return { statusCode: 204, headers: {}, body: '' };
}

/**
 * The one place errors become HTTP answers. Bodies share API Gateway's own `message` field, so a
 * client reads gateway and application errors alike, plus a stable `code` and, for validation,
 * `details` naming each bad field. Anything unexpected is logged in full and answered generically.
 */
export function errorResponse(error: unknown): ApiResult {
  if (error instanceof AppError) {
    const base = { message: error.message, code: error.code, ...error.fields };
    if (error.details.length === 0) return json(error.status, base, error.headers);
    // Bounded: a body with 300,000 bad fields must not answer megabytes (past 6 MB Lambda fails it).
    return json(
      error.status,
      { ...base, details: error.details.slice(0, MAX_DETAILS), details_total: error.details.length },
      error.headers,
    );
  }
  logger.error('Unhandled error', error instanceof Error ? error : new Error(String(error)));
  return json(500, { message: 'Internal server error', code: 'INTERNAL_ERROR' });
}

const mapErrors = (): middy.MiddlewareObj<ApiEvent, ApiResult> => ({
  onError: async (request) => {
    request.response = errorResponse(request.error);
  },
});

/** Logs which API key made the request: its id, never its value. */
const logCaller = (): middy.MiddlewareObj<ApiEvent, ApiResult> => ({
  before: async (request) => {
    const apiKeyId = keyIdOf(request.event);
    if (apiKeyId) logger.appendKeys({ api_key_id: apiKeyId });
  },
});

/**
 * A keyed request with `x-api-key` sent more than once is refused, as the authorizer refuses it: its
 * answer for a key and route is cached by one of the values, so a request with two may reach the
 * route on the strength of an earlier one.
 */
const oneKeyOnly = (): middy.MiddlewareObj<ApiEvent, ApiResult> => ({
  before: async ({ event }) => {
    if (!keyIdOf(event)) return;
    const sent = Object.entries(event.multiValueHeaders ?? {})
      .filter(([name]) => name.toLowerCase() === 'x-api-key')
      .flatMap(([, values]) => values ?? []);
    if (sent.length > 1) throw new ForbiddenError('Forbidden');
  },
});

/**
 * Wraps a route: logs and metrics with the request's context, and every error, typed or not,
 * leaves as a JSON answer and never as a Lambda failure.
 */
export function apiHandler(route: ApiRoute) {
  return middy<ApiEvent, ApiResult>()
    .use(telemetry<ApiEvent, ApiResult>())
    .use(logCaller())
    .use(mapErrors())
    .use(oneKeyOnly())
    .handler(route);
}

export function toFieldProblems(issues: z.$ZodIssue[], prefix: string): FieldProblem[] {
  return issues.flatMap((issue) => {
    const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        // A field name is the client's text: quoted, but never at length.
        field: [path, key.length > 100 ? `${key.slice(0, 100)}…` : key].filter(Boolean).join('.'),
        message: 'Unrecognized field',
      }));
    }
    return [{ field: path || '(body)', message: issue.message }];
  });
}

function validate<S extends z.ZodType>(schema: S, input: unknown, what: string, prefix: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    throw new ValidationError(`Invalid ${what}`, toFieldProblems(result.error.issues, prefix));
  }
  return result.data;
}

/** The request body as text (API Gateway base64-encodes some bodies); an empty body is a 400 saying `whenMissing`. */
export function bodyText(event: ApiEvent, whenMissing: string): string {
  if (event.body === null || event.body === undefined || event.body.trim() === '') {
    throw new ValidationError(whenMissing);
  }
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
}

/** Parses the JSON body against a schema; every way a body can be wrong is a 400 naming the problem. */
export function parseJsonBody<S extends z.ZodType>(event: ApiEvent, schema: S): z.output<S> {
  const text = bodyText(event, 'Request body is required');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ValidationError('Request body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ValidationError('Request body must be a JSON object');
  }
  return validate(schema, parsed, 'request body', '');
}

export function parseQuery<S extends z.ZodType>(event: ApiEvent, schema: S): z.output<S> {
  return validate(schema, event.queryStringParameters ?? {}, 'query parameters', 'query');
}

/**
 * REST APIs hand path parameters to the function still percent-encoded (`%40` for `@`), so the
 * function decodes them itself; a malformed escape is the client's mistake, not a 500.
 */
export function pathParameter(event: ApiEvent, name: string): string {
  const raw = event.pathParameters?.[name];
  if (raw === undefined || raw === null || raw === '') {
    throw new ValidationError(`Missing path parameter ${name}`, [
      { field: `path.${name}`, message: 'Required' },
    ]);
  }
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ValidationError(`Malformed path parameter ${name}`, [
      { field: `path.${name}`, message: 'Invalid percent-encoding' },
    ]);
  }
}

export function parsePathParameter<S extends z.ZodType>(
  event: ApiEvent,
  name: string,
  schema: S,
): z.output<S> {
  return validate(schema, pathParameter(event, name), `path parameter ${name}`, `path.${name}`);
}

/**
 * The API key's id: as the authorizer names the key it checked the scopes of (the usage plan meters
 * the same key), else as API Gateway's identity gives it.
 */
function keyIdOf(event: ApiEvent): string | undefined {
  const fromAuthorizer = event.requestContext?.authorizer?.keyId;
  if (typeof fromAuthorizer === 'string' && fromAuthorizer.length > 0) return fromAuthorizer;
  return event.requestContext?.identity?.apiKeyId ?? undefined;
}

/** The scopes the authorizer found on the request's key (none without an authorizer). */
export function callerScopes(event: ApiEvent): Scope[] {
  const scopes = event.requestContext?.authorizer?.scopes;
  return typeof scopes === 'string' ? scopes.split(' ').filter(isScope) : [];
}

/** The id of the API key API Gateway checked for this request: the owner of what it creates. */
export function callerApiKeyId(event: ApiEvent): string {
  const id = keyIdOf(event);
  if (!id) throw new ForbiddenError('The request was not made with an API key.');
  return id;
}

/** The actor an audit record names for a change this request makes: its API key. */
export const callerActor = (event: ApiEvent): Actor => ({ source: 'api', api_key_id: callerApiKeyId(event) });

/** A header by name, whatever its letter case (HTTP header names are case-insensitive). */
export function header(event: ApiEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  const entry = Object.entries(event.headers ?? {}).find(([key]) => key.toLowerCase() === wanted);
  return entry?.[1] ?? undefined;
}
