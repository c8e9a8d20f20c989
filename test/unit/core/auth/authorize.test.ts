import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { authorizeRequest, KeyIndex } from '../../../../lambdas/core/auth/authorize';
import { ROUTE_SCOPES } from '../../../../lambdas/core/auth/scopes';

const OPERATOR = 'o'.repeat(40);
const SENDER = 's'.repeat(40);
const API = 'arn:aws:execute-api:us-east-1:123456789012:abc123/v1';

function keys(values: Record<string, string> = { 'key-op': OPERATOR, 'key-send': SENDER }) {
  const lookUp = vi.fn(async (id: string) => values[id]);
  const index = new KeyIndex(
    [
      { id: 'key-op', name: 'operator', scopes: ['operator'] },
      { id: 'key-send', name: 'sender', scopes: ['send'] },
    ],
    { valueOf: lookUp },
  );
  return { index, lookUp };
}

function event(
  method: string,
  resourcePath: string,
  headers: Record<string, string[]> = { 'X-Api-Key': [SENDER] },
): APIGatewayRequestAuthorizerEvent {
  const path = resourcePath.replaceAll(/\{[^}]+\}/g, 'x');
  return {
    type: 'REQUEST',
    methodArn: `${API}/${method}${path}`,
    resource: resourcePath,
    path,
    httpMethod: method,
    headers: Object.fromEntries(Object.entries(headers).map(([name, values]) => [name, values.at(-1) ?? ''])),
    multiValueHeaders: headers,
    pathParameters: null,
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    stageVariables: null,
    requestContext: {
      httpMethod: method,
      resourcePath,
    } as APIGatewayRequestAuthorizerEvent['requestContext'],
  };
}

const statement = (result: Awaited<ReturnType<typeof authorizeRequest>>) =>
  result.policyDocument.Statement[0] as { Effect: string; Resource: string[] };

describe('the API keys authorizer', () => {
  it('allows a send key its routes, listing every method send covers, and hands the key to the usage plan', async () => {
    const result = await authorizeRequest(keys().index, event('POST', '/send-email'));
    expect(statement(result).Effect).toBe('Allow');
    const sendRoutes = Object.entries(ROUTE_SCOPES).filter(([, scope]) => scope === 'send');
    expect(statement(result).Resource).toHaveLength(sendRoutes.length);
    expect(statement(result).Resource).toContain(`${API}/GET/jobs/*/status`);
    expect(statement(result).Resource).not.toContain(`${API}/POST/nonprofits`);
    expect(result).toMatchObject({
      principalId: 'key-send',
      usageIdentifierKey: SENDER,
      context: { keyId: 'key-send', keyName: 'sender', scopes: 'send' },
    });
  });

  it('denies a send key a registry write, naming the scope the route needs', async () => {
    const result = await authorizeRequest(keys().index, event('DELETE', '/nonprofits/{email}'));
    expect(statement(result)).toMatchObject({ Effect: 'Deny', Resource: [`${API}/*`] });
    expect(result.context?.message).toBe(
      'This API key (sender) may not call DELETE /nonprofits/{email}: it needs the registry:write scope.',
    );
    expect(result.usageIdentifierKey).toBeUndefined();
  });

  it('allows the operator key every keyed route', async () => {
    const { index } = keys();
    for (const route of Object.keys(ROUTE_SCOPES)) {
      const [method = '', path = ''] = route.split(' ');
      const result = await authorizeRequest(index, event(method, path, { 'x-api-key': [OPERATOR] }));
      expect(statement(result).Effect).toBe('Allow');
      expect(statement(result).Resource).toHaveLength(Object.keys(ROUTE_SCOPES).length);
    }
  });

  it.each([
    ['no key', {}],
    ['an unknown key', { 'x-api-key': ['u'.repeat(40)] }],
    ['a key sent twice', { 'x-api-key': [SENDER, SENDER] }],
    ['a key in two headers of different case', { 'x-api-key': [SENDER], 'X-API-KEY': [OPERATOR] }],
    ['an over-long key', { 'x-api-key': ['s'.repeat(129)] }],
    ['a short key', { 'x-api-key': ['s'.repeat(19)] }],
    ['a key with a space', { 'x-api-key': [`${'s'.repeat(30)} x`] }],
  ])('denies %s with Forbidden, as API Gateway answers a bad key', async (_, headers) => {
    const result = await authorizeRequest(keys().index, event('GET', '/jobs', headers));
    expect(statement(result).Effect).toBe('Deny');
    expect(result.context?.message).toBe('Forbidden');
    expect(result.principalId).toBe('anonymous');
  });

  it('opens nothing with a key the stack names but API Gateway no longer has', async () => {
    const result = await authorizeRequest(keys({ 'key-op': OPERATOR }).index, event('GET', '/jobs'));
    expect(result.context?.message).toBe('Forbidden');
  });

  it('reads the keys once per environment, and again after a failed read', async () => {
    const { index, lookUp } = keys();
    lookUp.mockRejectedValueOnce(new Error('throttled'));
    await expect(authorizeRequest(index, event('GET', '/jobs'))).rejects.toThrow('throttled');
    await authorizeRequest(index, event('GET', '/jobs'));
    await authorizeRequest(index, event('GET', '/usage'));
    // Two keys: the failed attempt read both (one failed), the next read both, then none.
    expect(lookUp).toHaveBeenCalledTimes(4);
  });
});
