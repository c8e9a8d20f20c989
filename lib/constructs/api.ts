import { CfnOutput, Duration, Lazy, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  ApiKey,
  ApiKeySourceType,
  AuthorizationType,
  EndpointType,
  type IApiKey,
  IdentitySource,
  type IResource,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  Period,
  RequestAuthorizer,
  ResponseType,
  RestApi,
  type ThrottleSettings,
  type ThrottlingPerMethod,
  type UsagePlan,
} from 'aws-cdk-lib/aws-apigateway';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { type CfnFunction, type IFunction, Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { FORBIDDEN } from '../../lambdas/core/auth/authorize';
import { type DeclaredKey, scopeOfRoute } from '../../lambdas/core/auth/scopes';
import { SETTING } from '../../lambdas/core/settings';
import type { MailerConfig } from '../config';
import { ApiGatewayAccountLogRole } from './api-gateway-account';
import { ProjectFunction } from './project-function';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** `Retry-After` of API Gateway's 429 past the daily quota. */
export const QUOTA_RETRY_AFTER_SECONDS = 3600;

export interface MailerApiProps {
  config: MailerConfig;
}

/**
 * The key earlier versions created: a key named `operator` (in any letter case) keeps its logical
 * id, so an upgrade keeps its value and its `ApiKeyId` output.
 */
const FIRST_KEY = { name: 'operator', logicalId: 'FirstApiKey' } as const;

const pascalCase = (name: string) =>
  name
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');

/**
 * The REST API: every route requires an API key, and one usage plan (rate, burst and daily quota
 * from configuration) holds the keys the configuration declares. A REQUEST authorizer in front of
 * every keyed route lets a key call only what its scopes cover (`lambdas/core/auth/scopes.ts`) and
 * hands the key on to the usage plan (API key source `AUTHORIZER`), which still throttles, meters
 * and checks it. Routes are added by the constructs that own them.
 */
export class MailerApi extends Construct {
  static readonly STAGE_NAME = 'v1';

  readonly restApi: RestApi;
  readonly usagePlan: UsagePlan;
  /** The declared keys, in the configuration's order, with their scopes. */
  readonly apiKeys: { key: IApiKey; name: string; scopes: DeclaredKey['scopes']; first: boolean }[];
  readonly authorizerFunction: ProjectFunction;
  private readonly authorizer: RequestAuthorizer;
  private readonly methodThrottles: ThrottlingPerMethod[] = [];
  private readonly publicConcurrency: number;

  constructor(scope: Construct, id: string, { config }: MailerApiProps) {
    super(scope, id);
    this.publicConcurrency = config.publicFunctionConcurrency;
    const accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.restApi = new RestApi(this, 'RestApi', {
      restApiName: 'nonprofit-mailer',
      description: 'Registry of nonprofits and bulk templated email jobs',
      endpointTypes: [EndpointType.REGIONAL],
      // Access logs need the account-level CloudWatch role: set below only if the account has none.
      cloudWatchRole: false,
      // Behind a custom domain (and its web ACL), the default execute-api URL would be a way around them.
      disableExecuteApiEndpoint: config.publicApiUrl !== undefined,
      defaultMethodOptions: { apiKeyRequired: true },
      // The key comes from the authorizer's `usageIdentifierKey`: the one it checked the scopes of.
      apiKeySourceType: ApiKeySourceType.AUTHORIZER,
      deployOptions: {
        stageName: MailerApi.STAGE_NAME,
        tracingEnabled: true,
        // Per-method metrics (Count, 4XXError, 5XXError, Latency by route) for the dashboard.
        metricsEnabled: true,
        loggingLevel: MethodLoggingLevel.ERROR,
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
        throttlingRateLimit: config.stageRateLimit,
        throttlingBurstLimit: config.stageBurstLimit,
      },
    });

    // API Gateway writes its execution logs (ERROR level) to a log group it names and would create
    // itself, kept forever: declared here, before the stage, with a retention like the functions'.
    const executionLogs = new LogGroup(this, 'ExecutionLogs', {
      logGroupName: `API-Gateway-Execution-Logs_${this.restApi.restApiId}/${MailerApi.STAGE_NAME}`,
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.restApi.deploymentStage.node.addDependency(executionLogs);
    // The endpoint setting takes effect at the stage's next deployment: a change of it alone makes one.
    this.restApi.latestDeployment?.addToLogicalId({
      disableExecuteApiEndpoint: config.publicApiUrl !== undefined,
    });
    this.restApi.deploymentStage.node.addDependency(
      new ApiGatewayAccountLogRole(this, 'AccountLogRole').setting,
    );

    this.usagePlan = this.restApi.addUsagePlan('UsagePlan', {
      name: 'nonprofit-mailer-default',
      description: 'Default plan for API clients',
      throttle: { rateLimit: config.usagePlanRateLimit, burstLimit: config.usagePlanBurstLimit },
      quota: { limit: config.usagePlanQuotaPerDay, period: Period.DAY },
      // Method throttles are added with their routes; the plan renders this list at synthesis.
      apiStages: [{ api: this.restApi, stage: this.restApi.deploymentStage, throttle: this.methodThrottles }],
    });
    this.apiKeys = config.apiKeys.map(({ name, scopes, id }) => {
      const first = name.toLowerCase() === FIRST_KEY.name;
      const constructId = first ? FIRST_KEY.logicalId : `ApiKey${pascalCase(name)}`;
      // A key made by hand before keys were declared is adopted by id; it is in the plan already.
      if (id) return { key: ApiKey.fromApiKeyId(this, constructId, id), name, scopes, first };
      // Not `restApi.addApiKey`, which ties the key to the stage: key → stage → deployment →
      // method → authorizer → its function's environment (the key ids) → key would be a cycle.
      // The usage plan is what admits a key to the stage.
      const key = new ApiKey(this.restApi, constructId, {
        description: `API key ${name} (scopes: ${scopes.join(', ')})`,
      });
      this.usagePlan.addApiKey(key);
      return { key, name, scopes, first };
    });
    ({ fn: this.authorizerFunction, authorizer: this.authorizer } = this.buildAuthorizer(config));
    this.sayWhenToComeBack(config);
    this.sayForbiddenAsBefore();

    this.acknowledgeApiFindings(config);

    new CfnOutput(scope, 'ApiUrl', {
      // With a custom domain the stage's own URL answers nothing (its endpoint is disabled).
      value: config.publicApiUrl ?? this.restApi.url,
      description: 'Base URL of the API',
    });
    // `ApiKeyId` is the operator key's (or, without one, the first key's), as it was before keys were declared.
    const named = this.apiKeys.find(({ first }) => first) ?? this.apiKeys[0];
    for (const { key, name, scopes } of this.apiKeys) {
      new CfnOutput(scope, key === named?.key ? 'ApiKeyId' : `ApiKeyId${pascalCase(name)}`, {
        value: key.keyId,
        description: `Id of API key ${name} (scopes: ${scopes.join(', ')}); read its value with: aws apigateway get-api-key --include-value --api-key <id>`,
      });
    }
  }

  /**
   * The REQUEST authorizer. Its answer is cached per key and route (the identity sources), so a
   * denial names the scope that route needs; it reads the keys' values from API Gateway, once per
   * execution environment, and may read only the stack's own keys.
   */
  private buildAuthorizer(config: MailerConfig) {
    const fn = new ProjectFunction(this, 'Authorizer', {
      entry: 'api/authorize.ts',
      description: 'Authorizer: lets an API key call the routes its scopes cover',
      memorySize: 256,
      timeout: Duration.seconds(5),
    })
      .setting(
        SETTING.apiKeys,
        Stack.of(this).toJsonString(
          this.apiKeys.map(({ key, name, scopes }) => ({ id: key.keyId, name, scopes })),
        ),
      )
      .acknowledgeNoDeadLetterTarget('api');
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['apigateway:GET'],
        resources: this.apiKeys.map(({ key }) => key.keyArn),
      }),
    );
    const authorizer = new RequestAuthorizer(this, 'KeyScopes', {
      handler: fn,
      identitySources: [
        IdentitySource.header('x-api-key'),
        IdentitySource.context('httpMethod'),
        IdentitySource.context('resourcePath'),
      ],
      resultsCacheTtl: Duration.seconds(config.authorizerCacheSeconds),
    });
    return { fn, authorizer };
  }

  /**
   * A request without `x-api-key` (API Gateway answers 401 before the authorizer runs) or with one
   * the authorizer does not know answers 403 `Forbidden`, as before the authorizer; a known key on a
   * route its scopes do not cover answers 403 with the authorizer's reason, naming the scope.
   */
  private sayForbiddenAsBefore(): void {
    this.restApi.addGatewayResponse('MissingKey', {
      type: ResponseType.UNAUTHORIZED,
      statusCode: '403',
      templates: { 'application/json': JSON.stringify({ message: FORBIDDEN }) },
    });
    this.restApi.addGatewayResponse('ScopeDenied', {
      type: ResponseType.ACCESS_DENIED,
      statusCode: '403',
      templates: { 'application/json': '{"message":"$context.authorizer.message"}' },
    });
  }

  /** Every route added, for per-route monitoring. */
  readonly routes: { method: HttpMethod; path: string }[] = [];

  /**
   * Routes `method path` (for example `GET /nonprofits/{email}`) to a function; a throttle, when
   * given, replaces the plan's default rate and burst for this method, per API key. Every route
   * requires an API key unless it is `public`, with the reason it needs none (monitors and email
   * recipients hold no key).
   */
  addRoute(
    method: HttpMethod,
    path: string,
    handler: IFunction,
    options: { throttle?: ThrottleSettings; public?: string } = {},
  ): void {
    this.routes.push({ method, path });
    // A keyed route no scope covers would be open to no key at all: synthesis fails, naming it.
    const keyed = options.public === undefined;
    if (keyed) scopeOfRoute(method, path);
    // Anyone may call a public route: its function's concurrency is reserved and capped, so a flood
    // of it neither takes the account's concurrency from the rest nor is starved by it.
    else if (this.publicConcurrency > 0 && handler instanceof LambdaFunction)
      (handler.node.defaultChild as CfnFunction).reservedConcurrentExecutions = this.publicConcurrency;
    const resource = path
      .split('/')
      .filter(Boolean)
      .reduce<IResource>(
        (parent, part) => parent.getResource(part) ?? parent.addResource(part),
        this.restApi.root,
      );
    const created = resource.addMethod(
      method,
      new LambdaIntegration(handler),
      keyed
        ? { apiKeyRequired: true, authorizer: this.authorizer, authorizationType: AuthorizationType.CUSTOM }
        : { apiKeyRequired: false },
    );
    if (options.throttle) this.methodThrottles.push({ method: created, throttle: options.throttle });
    // A keyed route has an authorizer (APIG4 holds); none has Cognito: clients are programs with keys.
    Validations.of(created).acknowledge(
      ...(keyed ? [] : [{ id: 'AwsSolutions::AwsSolutions-APIG4', reason: options.public as string }]),
      {
        id: 'AwsSolutions::AwsSolutions-COG4',
        reason:
          options.public ??
          'No end users sign in: clients are server applications holding API keys, each held to its scopes by the Lambda authorizer.',
      },
    );
  }

  /**
   * API Gateway's own 429s (a key over its rate, a key past its daily quota) carry `Retry-After`, as
   * the API's own refusals do, so clients back off by the header rather than by guessing. A gateway
   * response is one for the whole API and its headers are static, so a throttled request is told the
   * longest any throttle takes to give a request back (12 s with `POST /send-email`'s 5 a minute):
   * a client that obeys it is never throttled again for having come back too early. Past the quota,
   * an hour (it resets at midnight UTC; an hour spares a client hammering a spent quota).
   */
  private sayWhenToComeBack(config: MailerConfig): void {
    const body = { 'application/json': '{"message":$context.error.messageString}' };
    this.restApi.addGatewayResponse('Throttled', {
      type: ResponseType.THROTTLED,
      // Read at synthesis, once every route has added its throttle.
      responseHeaders: {
        'Retry-After': Lazy.string({ produce: () => `'${this.slowestRefillSeconds(config)}'` }),
      },
      templates: body,
    });
    this.restApi.addGatewayResponse('QuotaExceeded', {
      type: ResponseType.QUOTA_EXCEEDED,
      responseHeaders: { 'Retry-After': `'${QUOTA_RETRY_AFTER_SECONDS}'` },
      templates: body,
    });
  }

  /** Seconds the slowest throttle (stage, plan or method) takes to give back one request, at least 1. */
  private slowestRefillSeconds(config: MailerConfig): number {
    const rates = [
      config.stageRateLimit,
      config.usagePlanRateLimit,
      ...this.methodThrottles.map(({ throttle }) => throttle.rateLimit ?? config.usagePlanRateLimit),
    ];
    return Math.max(1, ...rates.map((rate) => Math.ceil(1 / rate)));
  }

  private acknowledgeApiFindings(config: MailerConfig): void {
    Validations.of(this.restApi).acknowledge({
      id: 'AwsSolutions::AwsSolutions-APIG2',
      reason:
        'Each handler validates its input to answer a 400 naming every bad field; a gateway model would answer less precisely.',
    });
    // With `waf` (the default) the stack's own web ACL guards the stage (ApiWebAcl).
    if (!config.waf)
      Validations.of(this.restApi.deploymentStage).acknowledge({
        id: 'AwsSolutions::AwsSolutions-APIG3',
        reason:
          'waf is false: the API sits behind a web ACL of its own (a CloudFront distribution, or one attached by hand).',
      });
  }
}
