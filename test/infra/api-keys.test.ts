import { describe, expect, it } from 'vitest';
import { ROUTE_SCOPES } from '../../lambdas/core/auth/scopes';
import { resourcesOfType } from '../../local/template';
import { synthesizeForTests } from '../support/synth';

const TWO_KEYS = [
  { name: 'operator', scopes: ['operator'] },
  { name: 'newsletter', scopes: ['send', 'registry:read'] },
];
const { template, assertions } = synthesizeForTests({ apiKeys: JSON.stringify(TWO_KEYS) });

type Props = Record<string, unknown>;
const props = (resource: { Properties?: Props }) => resource.Properties ?? {};
const [authorizerId, authorizer] = resourcesOfType(template, 'AWS::ApiGateway::Authorizer')[0] ?? [];

describe('API keys and their scopes (apiKeys)', () => {
  it('creates each declared key in the usage plan, the operator key under the logical id earlier versions gave it', () => {
    const keys = resourcesOfType(template, 'AWS::ApiGateway::ApiKey');
    expect(keys.map(([id]) => id.replace(/[0-9A-F]{8}$/, ''))).toEqual([
      'ApiRestApiFirstApiKey',
      'ApiRestApiApiKeyNewsletter',
    ]);
    // Not tied to the stage by StageKeys: the usage plan admits a key.
    for (const [, key] of keys) expect(props(key).StageKeys).toBeUndefined();
    expect(resourcesOfType(template, 'AWS::ApiGateway::UsagePlanKey')).toHaveLength(2);
    expect(Object.keys(template.Outputs ?? {})).toEqual(
      expect.arrayContaining(['ApiKeyId', 'ApiKeyIdNewsletter']),
    );
  });

  it('puts one REQUEST authorizer, cached per key and route, in front of every keyed route, and the key source is the authorizer', () => {
    expect(props(authorizer ?? {})).toMatchObject({
      Type: 'REQUEST',
      IdentitySource: 'method.request.header.x-api-key,context.httpMethod,context.resourcePath',
      AuthorizerResultTtlInSeconds: 300,
    });
    const [, restApi] = resourcesOfType(template, 'AWS::ApiGateway::RestApi')[0] ?? [];
    expect(props(restApi ?? {}).ApiKeySourceType).toBe('AUTHORIZER');
    const methods = resourcesOfType(template, 'AWS::ApiGateway::Method').map(([, method]) => props(method));
    const keyed = methods.filter((method) => method.ApiKeyRequired === true);
    expect(keyed).toHaveLength(Object.keys(ROUTE_SCOPES).length);
    for (const method of keyed)
      expect(method).toMatchObject({ AuthorizationType: 'CUSTOM', AuthorizerId: { Ref: authorizerId } });
    for (const method of methods.filter((each) => each.ApiKeyRequired !== true))
      expect(method.AuthorizationType).toBe('NONE');
  });

  it('lets the authorizer read only the stack’s own keys, and names them with their scopes', () => {
    const functions = resourcesOfType(template, 'AWS::Lambda::Function');
    const [, fn] = functions.find(([id]) => id.startsWith('ApiAuthorizer')) ?? [];
    const variables = (props(fn ?? {}).Environment as { Variables: Record<string, unknown> }).Variables;
    const joined = JSON.stringify(variables.API_KEYS);
    expect(joined).toContain('\\"scopes\\":[\\"send\\",\\"registry:read\\"]');
    const policies = resourcesOfType(template, 'AWS::IAM::Policy').filter(([id]) =>
      id.startsWith('ApiAuthorizerRole'),
    );
    const statements = policies.flatMap(
      ([, policy]) => (props(policy).PolicyDocument as { Statement: Props[] }).Statement,
    );
    const apiGateway = statements.filter((statement) =>
      JSON.stringify(statement.Action).includes('apigateway'),
    );
    expect(apiGateway).toHaveLength(1);
    expect(apiGateway[0]?.Action).toBe('apigateway:GET');
    const resources = apiGateway[0]?.Resource as unknown[];
    expect(resources).toHaveLength(2);
    for (const resource of resources) expect(JSON.stringify(resource)).toMatch(/\/apikeys\/.*Ref/);
  });

  it('answers a missing key and a denied route with 403 JSON, the denial with the authorizer’s reason', () => {
    assertions.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'UNAUTHORIZED',
      StatusCode: '403',
      ResponseTemplates: { 'application/json': '{"message":"Forbidden"}' },
    });
    assertions.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'ACCESS_DENIED',
      StatusCode: '403',
      ResponseTemplates: { 'application/json': '{"message":"$context.authorizer.message"}' },
    });
  });

  it('keeps, by default, the one key and plan entry earlier versions created, under the same logical ids', () => {
    const defaults = synthesizeForTests({ apiKeys: undefined }).template;
    expect(resourcesOfType(defaults, 'AWS::ApiGateway::ApiKey').map(([id]) => id)).toEqual([
      'ApiRestApiFirstApiKey968BD0B9',
    ]);
    expect(resourcesOfType(defaults, 'AWS::ApiGateway::UsagePlanKey').map(([id]) => id)).toEqual([
      'ApiRestApiUsagePlanUsagePlanKeyResourceNonprofitMailerApiRestApiFirstApiKeyB39B3F08BDA06703',
    ]);
    expect(defaults.Outputs?.ApiKeyId?.Value).toEqual({ Ref: 'ApiRestApiFirstApiKey968BD0B9' });
  });

  it('adopts a key made by hand by its id: no new key, no second plan entry, and the authorizer may read it', () => {
    const adopted = synthesizeForTests({
      apiKeys: [
        { name: 'Operator', scopes: ['operator'] },
        { name: 'volunteer', scopes: ['send'], id: 'abc123defg' },
      ],
    }).template;
    expect(resourcesOfType(adopted, 'AWS::ApiGateway::ApiKey').map(([id]) => id)).toEqual([
      'ApiRestApiFirstApiKey968BD0B9',
    ]);
    expect(resourcesOfType(adopted, 'AWS::ApiGateway::UsagePlanKey')).toHaveLength(1);
    const policies = resourcesOfType(adopted, 'AWS::IAM::Policy').filter(([id]) =>
      id.startsWith('ApiAuthorizerRole'),
    );
    expect(JSON.stringify(policies)).toContain('/apikeys/abc123defg');
    expect(adopted.Outputs?.ApiKeyIdVolunteer?.Value).toBe('abc123defg');
  });

  it.each([
    [[{ name: 'ops', scopes: ['operator', 'admin'] }], /Unknown scope "admin"/],
    [
      [
        { name: 'news-letter', scopes: ['send'] },
        { name: 'newsletter', scopes: ['send'] },
      ],
      /Duplicate key name newsletter/,
    ],
    [[{ name: 'ops', scopes: ['send'], id: 'not-an-id' }], /Must be an API Gateway key id/],
    [Array.from({ length: 26 }, (_, n) => ({ name: `key${n}`, scopes: ['send'] })), /At most 25 keys/],
    [
      [
        { name: 'ops', scopes: ['operator'] },
        { name: 'OPS', scopes: ['send'] },
      ],
      /Duplicate key name OPS/,
    ],
    [[{ name: 'ops', scopes: [] }], /at least one scope/],
    [[], /at least one API key/],
    ['not json', /Must be a JSON list/],
  ])('refuses to synthesize apiKeys=%j, naming the problem', (apiKeys, problem) => {
    expect(() =>
      synthesizeForTests({ apiKeys: typeof apiKeys === 'string' ? apiKeys : JSON.stringify(apiKeys) }),
    ).toThrow(problem);
  });
});
