import { createHash } from 'node:crypto';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { covers, type DeclaredKey, ROUTE_SCOPES, routeName, type Scope } from './scopes';

/** Where a key's value is looked up by its id (API Gateway's `GetApiKey`); undefined: no such key. */
export interface KeyValues {
  valueOf(keyId: string): Promise<string | undefined>;
}

/** API Gateway's own bounds on a key's value: 20 to 128 characters, none of them a space or control. */
const KEY_VALUE = /^[\x21-\x7e]{20,128}$/;

/** What API Gateway answers a request without a usable key; the same words for every such request. */
export const FORBIDDEN = 'Forbidden';

const digest = (value: string) => createHash('sha256').update(value).digest('hex');

/**
 * The stack's keys by their value, read once per execution environment: API Gateway never changes a
 * key's value, and a deploy that adds or removes a key or changes its scopes starts new environments.
 * Values are held by digest, so a lookup's time says nothing of how close a guess came.
 */
export class KeyIndex {
  private loading: Promise<Map<string, DeclaredKey & { value: string }>> | undefined;

  constructor(
    private readonly declared: readonly DeclaredKey[],
    private readonly values: KeyValues,
  ) {}

  async find(value: string): Promise<(DeclaredKey & { value: string }) | undefined> {
    this.loading ??= this.load().catch((error: unknown) => {
      // A failed load (throttled, say) is tried again by the next request.
      this.loading = undefined;
      throw error;
    });
    return (await this.loading).get(digest(value));
  }

  private async load() {
    const found = await Promise.all(
      this.declared.map(async (key) => {
        const value = await this.values.valueOf(key.id);
        return value === undefined ? [] : [[digest(value), { ...key, value }] as const];
      }),
    );
    return new Map(found.flat());
  }
}

/** The method ARNs a key's scopes cover, under the API and stage of `methodArn`. */
function coveredMethods(methodArn: string, scopes: readonly Scope[]): string[] {
  // arn:aws:execute-api:{region}:{account}:{api-id}/{stage}/{METHOD}/{path…}
  const [api, stage] = methodArn.split('/');
  return Object.entries(ROUTE_SCOPES)
    .filter(([, scope]) => covers(scopes, scope))
    .map(([route]) => {
      const [method, path = ''] = route.split(' ');
      // A path parameter matches any one value: `*` in the policy.
      return `${api}/${stage}/${method}${path.replaceAll(/\{[^/}]+\}/g, '*')}`;
    });
}

const policy = (effect: 'Allow' | 'Deny', resources: string[]) => ({
  Version: '2012-10-17',
  Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: resources }],
});

/**
 * A denial: API Gateway answers 403 with `message` (the `ACCESS_DENIED` gateway response reads it).
 * It denies the whole stage, so a denial is never taken, cached, as leave for another route.
 */
const deny = (principalId: string, methodArn: string, message: string): APIGatewayAuthorizerResult => {
  const [api, stage] = methodArn.split('/');
  return { principalId, policyDocument: policy('Deny', [`${api}/${stage}/*`]), context: { message } };
};

/** Every value of a header, whatever the letter case its name was sent in. */
function headerValues(event: APIGatewayRequestAuthorizerEvent, name: string): string[] {
  const wanted = name.toLowerCase();
  const multi = Object.entries(event.multiValueHeaders ?? {}).filter(([key]) => key.toLowerCase() === wanted);
  if (multi.length > 0) return multi.flatMap(([, values]) => values ?? []);
  return Object.entries(event.headers ?? {})
    .filter(([key, value]) => key.toLowerCase() === wanted && value !== undefined)
    .map(([, value]) => value as string);
}

/**
 * The REQUEST authorizer's decision for one route: the key in `x-api-key` (exactly one, shaped as
 * API Gateway's are) must be one the stack declared, and one of its scopes must cover the route.
 * Allowed, the policy lists every method the key's scopes cover, and `usageIdentifierKey` hands the
 * key to the usage plan (API key source `AUTHORIZER`), which throttles, meters and checks it as
 * before, a disabled key included. Denied, the context says why, naming the scope the route needs.
 */
export async function authorizeRequest(
  keys: Pick<KeyIndex, 'find'>,
  event: APIGatewayRequestAuthorizerEvent,
): Promise<APIGatewayAuthorizerResult> {
  const sent = headerValues(event, 'x-api-key');
  const [value] = sent;
  if (sent.length !== 1 || value === undefined || !KEY_VALUE.test(value))
    return deny('anonymous', event.methodArn, FORBIDDEN);
  const key = await keys.find(value);
  if (!key) return deny('anonymous', event.methodArn, FORBIDDEN);
  const { httpMethod, resourcePath } = event.requestContext;
  const route = routeName(httpMethod, resourcePath);
  const needed = ROUTE_SCOPES[route];
  // A keyed route the table does not list cannot be synthesized; refuse one all the same.
  if (!needed) return deny(key.id, event.methodArn, `No API key may call ${route}: it has no scope.`);
  if (!covers(key.scopes, needed))
    return deny(
      key.id,
      event.methodArn,
      `This API key (${key.name}) may not call ${route}: it needs the ${needed} scope.`,
    );
  return {
    principalId: key.id,
    policyDocument: policy('Allow', coveredMethods(event.methodArn, key.scopes)),
    context: { keyId: key.id, keyName: key.name, scopes: key.scopes.join(' ') },
    usageIdentifierKey: key.value,
  };
}
