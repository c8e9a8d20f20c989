import type { AuthorizerModel, Route } from './api-model';
import type { InvokeResult } from './functions';

/**
 * Lambda REQUEST authorizers as API Gateway runs them: the identity sources must all be present (or
 * the answer is 401 without a call), the function's answer is cached per identity for the
 * authorizer's TTL, and its policy decides: an explicit `Deny` wins, else an `Allow` of the method
 * is needed. What it returns beside the policy (`context`, `usageIdentifierKey`) reaches the route.
 */

/** What the gateway knows of a request when it asks an authorizer. */
export interface AuthorizerRequest {
  route: Route;
  /** The request's path within the stage, as received. */
  path: string;
  methodArn: string;
  headers: {
    single: Record<string, string>;
    multi: Record<string, string[]>;
    lowerCase: Map<string, string>;
  };
  query: { single: Record<string, string>; multi: Record<string, string[]> };
  pathParameters: Record<string, string> | null;
  requestContext: Record<string, unknown>;
}

export type AuthorizerDecision =
  | {
      kind: 'allow';
      principalId: string;
      context: Record<string, string>;
      usageIdentifierKey?: string;
    }
  /** 401: an identity source is missing, or the function said `Unauthorized`. */
  | { kind: 'unauthorized' }
  /** 403: the policy does not allow the method (`explicit`: it denies it). */
  | { kind: 'denied'; explicit: boolean; context: Record<string, string> }
  /** 500: the function failed, or answered something that is not an authorizer's answer. */
  | { kind: 'failed'; reason: string };

interface PolicyStatement {
  Effect?: unknown;
  Action?: unknown;
  Resource?: unknown;
}

interface AuthorizerAnswer {
  principalId?: unknown;
  policyDocument?: { Statement?: PolicyStatement[] | PolicyStatement };
  context?: Record<string, unknown>;
  usageIdentifierKey?: unknown;
}

const asList = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value]);

/** IAM's wildcards: `*` any run of characters, `?` any one. */
const wildcard = (pattern: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replaceAll('*', '.*')
      .replaceAll('?', '.')}$`,
  );

/** How the policy treats invoking `methodArn`: `Deny` wins over `Allow`; neither is a denial too. */
export function policyEffect(answer: AuthorizerAnswer, methodArn: string): 'allow' | 'deny' | 'none' {
  let allowed = false;
  for (const statement of asList(answer.policyDocument?.Statement) as PolicyStatement[]) {
    const actions = asList(statement?.Action).map(String);
    if (!actions.some((action) => wildcard(action).test('execute-api:Invoke'))) continue;
    if (!asList(statement.Resource).some((resource) => wildcard(String(resource)).test(methodArn))) continue;
    if (statement.Effect === 'Deny') return 'deny';
    if (statement.Effect === 'Allow') allowed = true;
  }
  return allowed ? 'allow' : 'none';
}

/** The context an authorizer returns reaches the route as strings (API Gateway stringifies numbers and booleans). */
const stringContext = (context: Record<string, unknown> | undefined): Record<string, string> =>
  Object.fromEntries(
    Object.entries(context ?? {})
      .filter(([, value]) => ['string', 'number', 'boolean'].includes(typeof value))
      .map(([key, value]) => [key, String(value)]),
  );

export class LocalAuthorizers {
  private readonly cache = new Map<string, { until: number; answer: AuthorizerAnswer }>();

  constructor(
    private readonly authorizers: ReadonlyMap<string, AuthorizerModel>,
    private readonly invoke: (functionLogicalId: string, event: unknown) => Promise<InvokeResult>,
    private readonly now: () => number,
  ) {}

  async decide(request: AuthorizerRequest): Promise<AuthorizerDecision> {
    const authorizer = request.route.authorizerId
      ? this.authorizers.get(request.route.authorizerId)
      : undefined;
    if (!authorizer) return { kind: 'failed', reason: `no authorizer ${request.route.authorizerId}` };
    const identity = authorizer.identitySources.map((source) => identityValue(source, request));
    if (identity.some((value) => value === undefined || value === '')) return { kind: 'unauthorized' };

    const cacheKey = `${authorizer.id}\u0000${identity.join('\u0000')}`;
    const cached = this.cache.get(cacheKey);
    let answer: AuthorizerAnswer;
    if (cached && cached.until > this.now()) answer = cached.answer;
    else {
      const result = await this.invoke(authorizer.functionLogicalId, authorizerEvent(request));
      if (!result.ok) {
        // A function that throws `Unauthorized` asks for API Gateway's 401.
        if (result.error.errorMessage === 'Unauthorized') return { kind: 'unauthorized' };
        return { kind: 'failed', reason: `${result.error.errorType}: ${result.error.errorMessage}` };
      }
      const value = result.value as AuthorizerAnswer | undefined;
      if (typeof value?.principalId !== 'string' || !value.policyDocument)
        return { kind: 'failed', reason: 'the authorizer answered no principalId and policyDocument' };
      answer = value;
      if (authorizer.ttlSeconds > 0)
        this.cache.set(cacheKey, { until: this.now() + authorizer.ttlSeconds * 1000, answer });
    }

    const context = stringContext(answer.context);
    const effect = policyEffect(answer, request.methodArn);
    if (effect !== 'allow') return { kind: 'denied', explicit: effect === 'deny', context };
    return {
      kind: 'allow',
      principalId: String(answer.principalId),
      context,
      ...(typeof answer.usageIdentifierKey === 'string'
        ? { usageIdentifierKey: answer.usageIdentifierKey }
        : {}),
    };
  }
}

/** One identity source's value: a header, a query string parameter, or a context variable. */
function identityValue(source: string, request: AuthorizerRequest): string | undefined {
  const header = /^method\.request\.header\.(.+)$/.exec(source)?.[1];
  if (header) return request.headers.lowerCase.get(header.toLowerCase());
  const query = /^method\.request\.querystring\.(.+)$/.exec(source)?.[1];
  if (query) return request.query.single[query];
  const variable = /^context\.(.+)$/.exec(source)?.[1];
  if (variable) {
    const value = request.requestContext[variable];
    return typeof value === 'string' ? value : undefined;
  }
  return undefined;
}

/** The event a REQUEST authorizer receives. */
function authorizerEvent(request: AuthorizerRequest) {
  const { route } = request;
  const hasQuery = Object.keys(request.query.single).length > 0;
  return {
    type: 'REQUEST',
    methodArn: request.methodArn,
    resource: route.resourcePath,
    path: request.path,
    httpMethod: route.method,
    headers: request.headers.single,
    multiValueHeaders: request.headers.multi,
    queryStringParameters: hasQuery ? request.query.single : null,
    multiValueQueryStringParameters: hasQuery ? request.query.multi : null,
    pathParameters: request.pathParameters,
    stageVariables: null,
    requestContext: request.requestContext,
  };
}
