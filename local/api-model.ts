import { type CfnTemplate, type IntrinsicResolver, referencedLogicalId, resourcesOfType } from './template';
import type { QuotaPeriod } from './token-bucket';
import { type RateRuleModel, readRateRules } from './waf';

/**
 * What the local gateway serves, read from the template's `AWS::ApiGateway::*` resources: routes,
 * the stage and its throttling, API keys, usage plans and REQUEST authorizers. Nothing here names
 * this app's routes.
 */

export interface Throttle {
  rateLimit: number;
  burstLimit: number;
}

export interface Route {
  method: string;
  /** The resource path with its parameters, as API Gateway names it: `/nonprofits/{email}`. */
  resourcePath: string;
  resourceId: string;
  functionLogicalId: string;
  apiKeyRequired: boolean;
  /** The REQUEST authorizer in front of the route (`AuthorizationType: CUSTOM`), by its id. */
  authorizerId?: string;
}

/** A Lambda REQUEST authorizer: its function, what identifies a caller (and keys its cache), and for how long. */
export interface AuthorizerModel {
  id: string;
  functionLogicalId: string;
  /** `method.request.header.x-api-key`, `context.httpMethod`, …: each must be present, or API Gateway answers 401. */
  identitySources: string[];
  ttlSeconds: number;
}

export interface ApiKeyModel {
  logicalId: string;
  id: string;
  value?: string;
  enabled: boolean;
  description?: string;
}

export interface UsagePlanModel {
  id: string;
  throttle?: Throttle;
  quota?: { limit: number; period: QuotaPeriod };
  /** Method throttles of this plan's stage, keyed `/resource/path/METHOD`. */
  methodThrottles: Map<string, Throttle>;
  keyIds: Set<string>;
}

export interface ApiModel {
  restApiId: string;
  stageName: string;
  routes: Route[];
  /** Stage-wide throttling (all clients together), keyed `/resource/path/METHOD` or `*`. */
  stageThrottles: Map<string, Throttle>;
  apiKeys: ApiKeyModel[];
  usagePlans: UsagePlanModel[];
  /** Where the key a usage plan meters comes from: the `x-api-key` header, or an authorizer's `usageIdentifierKey`. */
  apiKeySource: 'HEADER' | 'AUTHORIZER';
  authorizers: Map<string, AuthorizerModel>;
  /** The template's gateway responses by type (`THROTTLED`, `DEFAULT_4XX`, …): their status, static headers and body template. */
  gatewayResponses: Map<string, GatewayResponseModel>;
  /** The rate-based rules of the stage's web ACL (WAF), applied in front of everything else. */
  rateRules: RateRuleModel[];
}

export interface GatewayResponseModel {
  statusCode?: number;
  headers: Record<string, string>;
  /** The `application/json` body template (`$context.error.messageString`, `$context.authorizer.<key>`). */
  template?: string;
}

type Props = Record<string, unknown>;
const props = (resource: { Properties?: Props }) => resource.Properties ?? {};

const toThrottle = (value: unknown): Throttle | undefined => {
  const raw = value as { RateLimit?: number; BurstLimit?: number } | undefined;
  if (!raw || (raw.RateLimit === undefined && raw.BurstLimit === undefined)) return undefined;
  return {
    rateLimit: raw.RateLimit ?? Number.POSITIVE_INFINITY,
    burstLimit: raw.BurstLimit ?? Number.POSITIVE_INFINITY,
  };
};

/** The function a proxy integration's (or an authorizer's) URI names, wherever in its `Fn::Join` the `Fn::GetAtt` sits. */
function integratedFunction(uri: unknown, template: CfnTemplate): string | undefined {
  if (Array.isArray(uri)) {
    for (const item of uri) {
      const found = integratedFunction(item, template);
      if (found) return found;
    }
    return undefined;
  }
  if (typeof uri !== 'object' || uri === null) return undefined;
  const target = referencedLogicalId(uri);
  if (target && template.Resources[target]?.Type === 'AWS::Lambda::Function') return target;
  return integratedFunction(Object.values(uri), template);
}

export function readApiModel(template: CfnTemplate, resolver: IntrinsicResolver): ApiModel {
  const restApis = resourcesOfType(template, 'AWS::ApiGateway::RestApi');
  const [restApi, ...others] = restApis;
  if (!restApi) throw new Error('The template has no AWS::ApiGateway::RestApi to serve');
  if (others.length > 0) throw new Error('The local gateway serves one REST API; the template has several');
  const [restApiLogicalId] = restApi;
  resolver.register(restApiLogicalId, {
    ref: restApiLogicalId.toLowerCase(),
    attributes: { RootResourceId: `${restApiLogicalId}Root` },
  });

  // Resource paths, resolved parent by parent.
  const resources = new Map(resourcesOfType(template, 'AWS::ApiGateway::Resource'));
  const paths = new Map<string, string>([[`${restApiLogicalId}Root`, '']]);
  const pathOf = (resourceId: string): string => {
    const known = paths.get(resourceId);
    if (known !== undefined) return known;
    const resource = resources.get(resourceId);
    if (!resource) throw new Error(`Unknown API Gateway resource ${resourceId}`);
    const parent = props(resource).ParentId;
    const parentId =
      referencedLogicalId(parent) === restApiLogicalId
        ? `${restApiLogicalId}Root`
        : referencedLogicalId(parent);
    const path = `${pathOf(String(parentId))}/${String(props(resource).PathPart)}`;
    paths.set(resourceId, path);
    return path;
  };

  const routes: Route[] = [];
  for (const [logicalId, method] of resourcesOfType(template, 'AWS::ApiGateway::Method')) {
    const properties = props(method);
    const resourceRef = properties.ResourceId;
    const resourceId =
      referencedLogicalId(resourceRef) === restApiLogicalId
        ? `${restApiLogicalId}Root`
        : referencedLogicalId(resourceRef);
    const integration = properties.Integration as { Type?: string; Uri?: unknown } | undefined;
    const functionLogicalId = integratedFunction(integration?.Uri, template);
    if (!resourceId || integration?.Type !== 'AWS_PROXY' || !functionLogicalId) {
      throw new Error(`Method ${logicalId}: only Lambda proxy integrations are served locally`);
    }
    const authorizerId =
      properties.AuthorizationType === 'CUSTOM' ? referencedLogicalId(properties.AuthorizerId) : undefined;
    routes.push({
      method: String(properties.HttpMethod),
      resourcePath: pathOf(resourceId) || '/',
      resourceId,
      functionLogicalId,
      apiKeyRequired: properties.ApiKeyRequired === true,
      ...(authorizerId ? { authorizerId } : {}),
    });
  }

  const authorizers = new Map<string, AuthorizerModel>();
  for (const [logicalId, authorizer] of resourcesOfType(template, 'AWS::ApiGateway::Authorizer')) {
    const properties = props(authorizer);
    const functionLogicalId = integratedFunction(properties.AuthorizerUri, template);
    if (properties.Type !== 'REQUEST' || !functionLogicalId)
      throw new Error(`Authorizer ${logicalId}: only Lambda REQUEST authorizers are run locally`);
    resolver.register(logicalId, { ref: logicalId.toLowerCase() });
    authorizers.set(logicalId, {
      id: logicalId,
      functionLogicalId,
      identitySources: String(properties.IdentitySource ?? '')
        .split(',')
        .map((source) => source.trim())
        .filter(Boolean),
      // API Gateway's default when the template says nothing.
      ttlSeconds: Number(properties.AuthorizerResultTtlInSeconds ?? 300),
    });
  }

  const stages = resourcesOfType(template, 'AWS::ApiGateway::Stage');
  const [stage] = stages;
  if (!stage) throw new Error('The template has no AWS::ApiGateway::Stage');
  const stageName = String(props(stage[1]).StageName);
  resolver.register(stage[0], { ref: stageName });
  const stageThrottles = new Map<string, Throttle>();
  for (const setting of (props(stage[1]).MethodSettings ?? []) as Props[]) {
    const throttle = toThrottle({
      RateLimit: setting.ThrottlingRateLimit,
      BurstLimit: setting.ThrottlingBurstLimit,
    });
    if (!throttle) continue;
    // `/*` for every method; otherwise `/` and the resource path with each `/` as `~1` (`/~1unsubscribe`).
    const raw = String(setting.ResourcePath ?? '/*');
    const resourcePath = raw === '/*' ? raw : raw.slice(1).replaceAll('~1', '/');
    const key = resourcePath === '/*' ? '*' : `${resourcePath}/${String(setting.HttpMethod)}`;
    stageThrottles.set(key, throttle);
  }

  const apiKeys = resourcesOfType(template, 'AWS::ApiGateway::ApiKey').map(([logicalId, key]) => {
    const id = logicalId.toLowerCase();
    resolver.register(logicalId, { ref: id });
    const { Value: value, Description: description } = props(key);
    return {
      logicalId,
      id,
      enabled: props(key).Enabled !== false,
      ...(typeof value === 'string' ? { value } : {}),
      ...(typeof description === 'string' ? { description } : {}),
    };
  });

  const usagePlans = resourcesOfType(template, 'AWS::ApiGateway::UsagePlan').map(([logicalId, plan]) => {
    resolver.register(logicalId, { ref: logicalId.toLowerCase() });
    const properties = props(plan);
    const quota = properties.Quota as { Limit?: number; Period?: QuotaPeriod } | undefined;
    const methodThrottles = new Map<string, Throttle>();
    for (const apiStage of (properties.ApiStages ?? []) as Props[]) {
      if (resolver.resolve(apiStage.Stage) !== stageName) continue;
      for (const [key, value] of Object.entries((apiStage.Throttle ?? {}) as Props)) {
        const throttle = toThrottle(value);
        if (throttle) methodThrottles.set(key, throttle);
      }
    }
    const servesStage = ((properties.ApiStages ?? []) as Props[]).some(
      (apiStage) => resolver.resolve(apiStage.Stage) === stageName,
    );
    const model: UsagePlanModel = {
      id: logicalId.toLowerCase(),
      methodThrottles,
      keyIds: new Set(),
      ...(toThrottle(properties.Throttle) ? { throttle: toThrottle(properties.Throttle) } : {}),
      ...(quota?.Limit !== undefined ? { quota: { limit: quota.Limit, period: quota.Period ?? 'DAY' } } : {}),
    };
    return { model, servesStage };
  });

  for (const [, planKey] of resourcesOfType(template, 'AWS::ApiGateway::UsagePlanKey')) {
    const keyId = resolver.resolve(props(planKey).KeyId);
    const planId = resolver.resolve(props(planKey).UsagePlanId);
    usagePlans.find(({ model }) => model.id === planId)?.model.keyIds.add(String(keyId));
  }

  return {
    restApiId: resolver.ref(restApiLogicalId),
    stageName,
    routes,
    stageThrottles,
    apiKeys,
    usagePlans: usagePlans.filter(({ servesStage }) => servesStage).map(({ model }) => model),
    apiKeySource: props(restApi[1]).ApiKeySourceType === 'AUTHORIZER' ? 'AUTHORIZER' : 'HEADER',
    authorizers,
    gatewayResponses: readGatewayResponses(template),
    rateRules: readRateRules(template),
  };
}

/**
 * `AWS::ApiGateway::GatewayResponse`s: the status a type answers with, and its headers. Only static
 * header values (`'…'`) are known without a request; those mapped from the request are left out.
 */
function readGatewayResponses(template: CfnTemplate): Map<string, GatewayResponseModel> {
  const responses = new Map<string, GatewayResponseModel>();
  for (const [, resource] of resourcesOfType(template, 'AWS::ApiGateway::GatewayResponse')) {
    const properties = props(resource);
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries((properties.ResponseParameters ?? {}) as Props)) {
      const name = /^gatewayresponse\.header\.(.+)$/.exec(key)?.[1];
      const text = typeof value === 'string' ? /^'(.*)'$/.exec(value)?.[1] : undefined;
      if (name !== undefined && text !== undefined) headers[name] = text;
    }
    const template = (properties.ResponseTemplates as Record<string, unknown> | undefined)?.[
      'application/json'
    ];
    responses.set(String(properties.ResponseType), {
      ...(properties.StatusCode !== undefined ? { statusCode: Number(properties.StatusCode) } : {}),
      headers,
      ...(typeof template === 'string' ? { template } : {}),
    });
  }
  return responses;
}
