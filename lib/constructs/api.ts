import { CfnOutput, Lazy, RemovalPolicy, Validations } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  EndpointType,
  type IApiKey,
  type IResource,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  Period,
  ResponseType,
  RestApi,
  type ThrottleSettings,
  type ThrottlingPerMethod,
  type UsagePlan,
} from 'aws-cdk-lib/aws-apigateway';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { MailerConfig } from '../config';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** `Retry-After` of API Gateway's 429 past the daily quota. */
export const QUOTA_RETRY_AFTER_SECONDS = 3600;

export interface MailerApiProps {
  config: MailerConfig;
}

/**
 * The REST API: every route requires an API key, and one usage plan (rate, burst and daily quota
 * from configuration) holds the first key. Routes are added by the constructs that own them.
 */
export class MailerApi extends Construct {
  static readonly STAGE_NAME = 'v1';

  readonly restApi: RestApi;
  readonly usagePlan: UsagePlan;
  readonly apiKey: IApiKey;
  private readonly methodThrottles: ThrottlingPerMethod[] = [];

  constructor(scope: Construct, id: string, { config }: MailerApiProps) {
    super(scope, id);
    const accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.restApi = new RestApi(this, 'RestApi', {
      restApiName: 'nonprofit-mailer',
      description: 'Registry of nonprofits and bulk templated email jobs',
      endpointTypes: [EndpointType.REGIONAL],
      // Access logs need the account-level CloudWatch role; the stack creates it.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.DESTROY,
      defaultMethodOptions: { apiKeyRequired: true },
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

    this.usagePlan = this.restApi.addUsagePlan('UsagePlan', {
      name: 'nonprofit-mailer-default',
      description: 'Default plan for API clients',
      throttle: { rateLimit: config.usagePlanRateLimit, burstLimit: config.usagePlanBurstLimit },
      quota: { limit: config.usagePlanQuotaPerDay, period: Period.DAY },
      // Method throttles are added with their routes; the plan renders this list at synthesis.
      apiStages: [{ api: this.restApi, stage: this.restApi.deploymentStage, throttle: this.methodThrottles }],
    });
    this.apiKey = this.restApi.addApiKey('FirstApiKey', {
      description: 'The first API key, created with the stack',
    });
    this.usagePlan.addApiKey(this.apiKey);
    this.sayWhenToComeBack(config);

    this.acknowledgeApiFindings();

    new CfnOutput(scope, 'ApiUrl', { value: this.restApi.url, description: 'Base URL of the API' });
    new CfnOutput(scope, 'ApiKeyId', {
      value: this.apiKey.keyId,
      description: 'Id of the first API key; read its value with: aws apigateway get-api-key --include-value',
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
    const resource = path
      .split('/')
      .filter(Boolean)
      .reduce<IResource>(
        (parent, part) => parent.getResource(part) ?? parent.addResource(part),
        this.restApi.root,
      );
    const created = resource.addMethod(method, new LambdaIntegration(handler), {
      apiKeyRequired: options.public === undefined,
    });
    if (options.throttle) this.methodThrottles.push({ method: created, throttle: options.throttle });
    Validations.of(created).acknowledge(
      {
        id: 'AwsSolutions::AwsSolutions-APIG4',
        reason:
          options.public ??
          'Clients are applications identified by API keys under usage plans, as the design specifies.',
      },
      {
        id: 'AwsSolutions::AwsSolutions-COG4',
        reason: options.public ?? 'No end users sign in: clients are server applications holding API keys.',
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

  private acknowledgeApiFindings(): void {
    Validations.of(this.restApi).acknowledge({
      id: 'AwsSolutions::AwsSolutions-APIG2',
      reason:
        'Each handler validates its input to answer a 400 naming every bad field; a gateway model would answer less precisely.',
    });
    Validations.of(this.restApi.deploymentStage).acknowledge({
      id: 'AwsSolutions::AwsSolutions-APIG3',
      reason:
        'A WAF web ACL is an account-level choice with its own cost; attach one to the stage where needed.',
    });
    const cloudWatchRole = this.restApi.node.tryFindChild('CloudWatchRole');
    if (cloudWatchRole) {
      Validations.of(cloudWatchRole).acknowledge({
        id: 'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        reason:
          "API Gateway's account-level logging role; AWS maintains this policy for exactly this purpose.",
      });
    }
  }
}
