import { ArnFormat, Duration, Stack, Validations } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { QUEUE, TABLE } from '../../lambdas/core/bindings';
import { METRIC, METRICS_NAMESPACE, SERVICE_NAME } from '../../lambdas/core/observability/metric-names';
import { SETTING } from '../../lambdas/core/settings';
import type { MailerConfig } from '../config';
import { PACKAGE_VERSION } from '../version';
import type { MailerApi } from './api';
import type { MailerData } from './data';
import type { PersonRequests } from './person-requests';
import { ProjectFunction } from './project-function';
import type { EmailQueue } from './queue';
import type { SesFeedback } from './ses-feedback';
import { publisherTopicKey } from './topic-key';

export interface MonitoringProps {
  api: MailerApi;
  data: MailerData;
  queue: EmailQueue;
  consumer: ProjectFunction;
  /** Counts outcomes into their jobs from the deliveries table's stream. */
  counter: ProjectFunction;
  /** The publisher of the outbox's events (core/events). */
  publisher: ProjectFunction;
  /** The unsubscribe link secret's rotation function. */
  linkSecretRotation: ProjectFunction;
  /** A person's data requests: their steps' dead-letter queue is watched. */
  personRequests: PersonRequests;
  /** SES's bounces and complaints, when emails go through SES. */
  sesFeedback?: SesFeedback | undefined;
  /** The sending domain's SES identity, when the stack created one: /health reports its verification. */
  senderIdentity?: string | undefined;
  config: MailerConfig;
}

const FIVE_MINUTES = Duration.minutes(5);

/** One of the functions' own metrics (namespace NonprofitMailer, dimension service only). */
function appMetric(
  metricName: string,
  statistic = 'Sum',
  period = Duration.minutes(1),
  label?: string,
): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: SERVICE_NAME },
    statistic,
    period,
    ...(label ? { label } : {}),
  });
}

function graph(title: string, left: IMetric[], width = 8): GraphWidget {
  return new GraphWidget({ title, left, width, height: 6 });
}

/**
 * What operators watch: GET /health (no API key: monitors call it), one dashboard, and alarms to
 * an SNS topic. Missing data never pages: a quiet system is not a broken one.
 */
export class MailerMonitoring extends Construct {
  readonly topic: Topic;
  readonly dashboard: Dashboard;
  readonly alarms: Alarm[] = [];
  readonly alarmNamePrefix: string;
  readonly health: ProjectFunction;

  constructor(
    scope: Construct,
    id: string,
    {
      api,
      data,
      queue,
      consumer,
      counter,
      publisher,
      linkSecretRotation,
      personRequests,
      sesFeedback,
      senderIdentity,
      config,
    }: MonitoringProps,
  ) {
    super(scope, id);
    const stack = Stack.of(this);
    this.alarmNamePrefix = `${stack.stackName}-`;

    this.health = new ProjectFunction(this, 'Health', {
      entry: 'api/health.ts',
      description: 'GET /health and GET /health/details',
    })
      .bindTable(TABLE.nonprofits, data.nonprofits, ['dynamodb:GetItem'])
      .bindQueue(QUEUE.emails, queue.queue, ['sqs:GetQueueAttributes'])
      .bindQueue(QUEUE.deadLetters, queue.deadLetterQueue, ['sqs:GetQueueAttributes'])
      .setting(SETTING.alarmNamePrefix, this.alarmNamePrefix)
      .setting(SETTING.serviceVersion, PACKAGE_VERSION)
      .setting(SETTING.healthCacheSeconds, String(config.healthCacheSeconds))
      .acknowledgeNoDeadLetterTarget('api');
    this.health.addToRolePolicy(
      new PolicyStatement({
        actions: ['cloudwatch:DescribeAlarms'],
        resources: [
          stack.formatArn({
            service: 'cloudwatch',
            resource: 'alarm',
            resourceName: `${this.alarmNamePrefix}*`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    );
    this.health.setting(SETTING.emailTransport, config.transport);
    if (config.transport === 'ses') this.grantSendingChecks(stack, data, sesFeedback?.configurationSetName);
    if (senderIdentity) {
      // Whether the domain is verified and DKIM signs: read-only, on this one identity.
      this.health.setting(SETTING.senderIdentity, senderIdentity);
      this.health.addToRolePolicy(
        new PolicyStatement({
          actions: ['ses:GetEmailIdentity'],
          resources: [
            stack.formatArn({
              service: 'ses',
              resource: 'identity',
              resourceName: senderIdentity,
              arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
            }),
          ],
        }),
      );
    }
    api.addRoute('GET', '/health', this.health, {
      public: 'Monitors call /health without a key; it answers only the verdict and when it was reached.',
    });
    // Every check, with stable codes for what failed: what the system runs on is the operator's to see.
    api.addRoute('GET', '/health/details', this.health);

    this.topic = new Topic(this, 'Alarms', {
      displayName: 'nonprofit-mailer alarms',
      masterKey: publisherTopicKey(this, 'AlarmTopicKey', {
        description: 'Encrypts the nonprofit-mailer alarm topic; CloudWatch alarms may publish to it',
        service: 'cloudwatch.amazonaws.com',
        statementId: 'CloudWatchAlarmsPublish',
      }),
      enforceSSL: true,
    });
    // The topic's own policy (it has one: TLS is enforced) must let CloudWatch publish this stack's alarms.
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    );
    if (config.alarmEmail) {
      const subscription = this.topic.addSubscription(new EmailSubscription(config.alarmEmail));
      Validations.of(subscription).acknowledge({
        id: 'Serverless::Serverless-SNSRedrivePolicy',
        reason:
          'An email subscription to alarms: an undeliverable alarm email has nobody to be redriven to; the alarm state stays in CloudWatch.',
      });
    }

    const functions = stack.node
      .findAll()
      .filter((construct): construct is ProjectFunction => construct instanceof ProjectFunction);
    this.dashboard = this.buildDashboard(api, queue, functions);
    this.buildAlarms(api, queue, personRequests, { consumer, linkSecretRotation }, functions, config);
    // A stream batch is retried until it is counted: while it fails, jobs' counts and ends wait.
    this.alarm(
      'OutcomeCountingBehind',
      `Outcomes wait more than ${config.ledgerCountAfterSeconds} seconds to be counted on their jobs (the deliveries stream's counter is failing or slow); the sweeper then counts jobs whose every outcome is recorded from their ledger`,
      {
        metric: counter.metric('IteratorAge', { period: FIVE_MINUTES, statistic: 'Maximum' }),
        threshold: config.ledgerCountAfterSeconds * 1000,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      },
    );
    // An event is retried until the bus takes it: while it fails, every later event waits behind it.
    this.alarm(
      'EventsBehind',
      'Events wait more than five minutes to be put on the EventBridge bus (the publisher is failing: throttled, or denied by a bus policy); they are told once it succeeds, for up to a day',
      {
        metric: publisher.metric('IteratorAge', { period: FIVE_MINUTES, statistic: 'Maximum' }),
        threshold: FIVE_MINUTES.toMilliseconds(),
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      },
    );
    this.alarm(
      'EventsRefused',
      'EventBridge refused events for good (a malformed detail): they were dropped, not published; the publisher logs which',
      { metric: appMetric(METRIC.eventsRefused, 'Sum', FIVE_MINUTES), threshold: 1 },
    );
    this.alarm(
      'OutcomesNotCounted',
      'The outcome counter found more outcomes than a job had recipients left (counted before): its counts need a look',
      { metric: appMetric(METRIC.outcomesNotCounted, 'Sum', FIVE_MINUTES), threshold: 1 },
    );
    if (sesFeedback) this.watchSesFeedback(sesFeedback);
  }

  private apiMetric(
    api: MailerApi,
    metricName: string,
    statistic: string,
    route?: { method: string; path: string },
  ): Metric {
    return new Metric({
      namespace: 'AWS/ApiGateway',
      metricName,
      statistic,
      period: FIVE_MINUTES,
      dimensionsMap: {
        ApiName: api.restApi.restApiName,
        ...(route
          ? { Method: route.method, Resource: route.path, Stage: api.restApi.deploymentStage.stageName }
          : {}),
      },
      ...(route ? { label: `${route.method} ${route.path}` } : {}),
    });
  }

  private buildDashboard(api: MailerApi, queue: EmailQueue, functions: ProjectFunction[]): Dashboard {
    const routes = api.routes;
    const perRoute = (metricName: string, statistic: string) =>
      routes.map((route) => this.apiMetric(api, metricName, statistic, route));
    const perFunction = (metric: (fn: ProjectFunction) => IMetric) => functions.map(metric);
    const dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: `${Stack.of(this).stackName}-operations`,
    });
    dashboard.addWidgets(
      new TextWidget({
        markdown:
          '# nonprofit-mailer\nAPI, email flow, queues and functions. Alarms go to the SNS topic in this stack.',
        width: 24,
        height: 2,
      }),
    );
    dashboard.addWidgets(
      graph('API requests per route (5 min)', perRoute('Count', 'Sum')),
      graph('API 4xx rate per route', perRoute('4XXError', 'Average')),
      graph('API 5xx rate per route', perRoute('5XXError', 'Average')),
    );
    dashboard.addWidgets(
      graph('API p99 latency per route (ms)', perRoute('Latency', 'p99')),
      graph('Jobs and recipients accepted per minute', [
        appMetric(METRIC.jobsAccepted),
        appMetric(METRIC.recipientsAccepted),
      ]),
      graph('Emails sent, suppressed, cancelled and failed per minute', [
        appMetric(METRIC.emailsSent),
        appMetric(METRIC.emailsSuppressed),
        appMetric(METRIC.emailsCancelled),
        appMetric(METRIC.emailsFailedNonprofitDeleted),
        appMetric(METRIC.emailsFailedRejected),
        appMetric(METRIC.emailsFailedTooLarge),
        appMetric(METRIC.emailsFailedDeadLetter),
      ]),
    );
    dashboard.addWidgets(
      graph('Queue depth and in flight', [
        queue.queue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(1),
          statistic: 'Maximum',
        }),
        queue.queue.metricApproximateNumberOfMessagesNotVisible({
          period: Duration.minutes(1),
          statistic: 'Maximum',
        }),
      ]),
      graph('Age of the oldest email waiting (s)', [
        queue.queue.metricApproximateAgeOfOldestMessage({
          period: Duration.minutes(1),
          statistic: 'Maximum',
        }),
      ]),
      graph('Dead-letter queue depth', [
        queue.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(1),
          statistic: 'Maximum',
        }),
        appMetric(METRIC.deadLetters),
      ]),
    );
    dashboard.addWidgets(
      graph('Email latency, acceptance to record (ms)', [
        appMetric(METRIC.emailLatency, 'p50', Duration.minutes(1), 'p50'),
        appMetric(METRIC.emailLatency, 'p99', Duration.minutes(1), 'p99'),
      ]),
      graph('Job duration (s)', [
        appMetric(METRIC.jobDuration, 'p50', FIVE_MINUTES, 'p50'),
        appMetric(METRIC.jobDuration, 'Maximum', FIVE_MINUTES, 'max'),
      ]),
      graph('Retries, duplicates, sweeper re-enqueues per minute', [
        appMetric(METRIC.emailsRetried),
        appMetric(METRIC.emailsDeferred),
        appMetric(METRIC.sendingPaused),
        appMetric(METRIC.duplicateDeliveries),
        appMetric(METRIC.sweeperReenqueued),
      ]),
    );
    dashboard.addWidgets(
      graph(
        'Function errors',
        perFunction((fn) => fn.metricErrors({ period: FIVE_MINUTES, label: fn.node.id })),
      ),
      graph(
        'Function throttles',
        perFunction((fn) => fn.metricThrottles({ period: FIVE_MINUTES, label: fn.node.id })),
      ),
      graph(
        'Function duration p99 (ms)',
        perFunction((fn) => fn.metricDuration({ period: FIVE_MINUTES, statistic: 'p99', label: fn.node.id })),
      ),
    );
    return dashboard;
  }

  /** /health asks SES whether it will send: the account (GetAccount has no resource to scope to) and the configuration set. */
  private grantSendingChecks(stack: Stack, data: MailerData, configurationSet: string | undefined): void {
    this.health.addToRolePolicy(new PolicyStatement({ actions: ['ses:GetAccount'], resources: ['*'] }));
    Validations.of(this.health.role ?? this.health).acknowledge({
      id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
      reason:
        'ses:GetAccount (read-only: sending enabled, quota) supports no resource-level permission, as X-Ray tracing actions on the same role do not.',
    });
    // Why sending is off when the reputation guard turned it off: its record, in the jobs table.
    this.health.bindTable(TABLE.jobs, data.jobs, ['dynamodb:GetItem']);
    if (configurationSet) {
      this.health.setting(SETTING.sesConfigurationSet, configurationSet);
      this.health.addToRolePolicy(
        new PolicyStatement({
          actions: ['ses:GetConfigurationSet'],
          resources: [
            stack.formatArn({
              service: 'ses',
              resource: 'configuration-set',
              resourceName: configurationSet,
              arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
            }),
          ],
        }),
      );
    }
  }

  /**
   * Bounces and complaints: what SES reported, the feedback that could not be recorded, and SES's
   * own reputation rates for the account, which SES acts on (review at a 5 % bounce or 0.1 %
   * complaint rate, sending paused at 10 % or 0.5 %): the alarms ring at the first line.
   */
  private watchSesFeedback(feedback: SesFeedback): void {
    // SES publishes these rates now and then, not every minute: an hour's maximum, and a gap keeps
    // the alarm as it was instead of sending OK between two high readings.
    const reputation = (metricName: string) =>
      new Metric({ namespace: 'AWS/SES', metricName, statistic: 'Maximum', period: Duration.hours(1) });
    const bounceRate = reputation('Reputation.BounceRate');
    const complaintRate = reputation('Reputation.ComplaintRate');
    const feedbackDeadLetters = feedback.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: FIVE_MINUTES,
      statistic: 'Maximum',
    });
    this.dashboard.addWidgets(
      graph('SES bounces and complaints per minute', [
        appMetric(METRIC.emailsBounced),
        appMetric(METRIC.emailsBouncedTransient),
        appMetric(METRIC.emailsComplained),
      ]),
      graph('SES reputation (account): bounce and complaint rates', [
        bounceRate.with({ label: 'bounce rate' }),
        complaintRate.with({ label: 'complaint rate' }),
      ]),
      graph('SES feedback not recorded (dead-letter queue)', [feedbackDeadLetters]),
    );
    this.alarm(
      'SendingPausedByGuard',
      'The reputation guard turned sending off: its bounce or complaint rate reached a threshold. GET /sending says why; POST /sending/resume turns it back on',
      { metric: appMetric(METRIC.sendingPausedByGuard, 'Sum', FIVE_MINUTES), threshold: 1 },
    );
    this.alarm(
      'FeedbackDeadLetters',
      'SES bounce or complaint events could not be recorded and wait in the feedback dead-letter queue',
      {
        metric: feedbackDeadLetters,
        threshold: 1,
      },
    );
    this.alarm(
      'SesBounceRate',
      "The account's SES bounce rate reached 5 % (SES reviews the account there, pauses it at 10 %)",
      {
        metric: bounceRate,
        threshold: 0.05,
        treatMissingData: TreatMissingData.IGNORE,
      },
    );
    this.alarm(
      'SesComplaintRate',
      "The account's SES complaint rate reached 0.1 % (SES reviews the account there, pauses it at 0.5 %)",
      {
        metric: complaintRate,
        threshold: 0.001,
        treatMissingData: TreatMissingData.IGNORE,
      },
    );
  }

  private alarm(
    id: string,
    description: string,
    props: {
      metric: IMetric;
      threshold: number;
      comparisonOperator?: ComparisonOperator;
      treatMissingData?: TreatMissingData;
    },
  ): Alarm {
    const alarm = new Alarm(this, id, {
      alarmName: `${this.alarmNamePrefix}${id}`,
      alarmDescription: description,
      metric: props.metric,
      threshold: props.threshold,
      evaluationPeriods: 1,
      comparisonOperator: props.comparisonOperator ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      // No data means nothing happened (no traffic, empty queues): never a reason to page anyone.
      treatMissingData: props.treatMissingData ?? TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new SnsAction(this.topic));
    alarm.addOkAction(new SnsAction(this.topic));
    this.alarms.push(alarm);
    return alarm;
  }

  private buildAlarms(
    api: MailerApi,
    queue: EmailQueue,
    personRequests: PersonRequests,
    { consumer, linkSecretRotation }: { consumer: ProjectFunction; linkSecretRotation: ProjectFunction },
    functions: ProjectFunction[],
    config: MailerConfig,
  ): void {
    this.alarm('DeadLettersWaiting', 'Emails failed every attempt and wait in the dead-letter queue', {
      metric: queue.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: FIVE_MINUTES,
        statistic: 'Maximum',
      }),
      threshold: 1,
    });
    this.alarm(
      'PersonRequestDeadLetters',
      "A step of a person's data request failed every try and waits in its dead-letter queue: the request stays running until the step is redriven",
      {
        metric: personRequests.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: FIVE_MINUTES,
          statistic: 'Maximum',
        }),
        threshold: 1,
      },
    );
    this.alarm(
      'OldestEmailTooOld',
      `An email has waited in the queue more than ${config.alarmOldestMessageSeconds} s`,
      {
        metric: queue.queue.metricApproximateAgeOfOldestMessage({
          period: FIVE_MINUTES,
          statistic: 'Maximum',
        }),
        threshold: config.alarmOldestMessageSeconds,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      },
    );
    this.alarm(
      'Api5xxRate',
      `More than ${config.alarmApi5xxPercent} % of API requests failed with a 5xx over 5 minutes`,
      {
        metric: new MathExpression({
          expression: 'IF(requests > 0, 100 * errors / requests, 0)',
          usingMetrics: {
            errors: this.apiMetric(api, '5XXError', 'Sum'),
            requests: this.apiMetric(api, 'Count', 'Sum'),
          },
          period: FIVE_MINUTES,
          label: 'API 5xx %',
        }),
        threshold: config.alarmApi5xxPercent,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      },
    );
    this.alarm(
      'SendingPaused',
      'SES refuses to send (sending paused or account suspended, identity not verified or not permitted): emails wait in the queue',
      { metric: appMetric(METRIC.sendingPaused, 'Sum', FIVE_MINUTES), threshold: 1 },
    );
    this.alarm('ConsumerErrors', 'The email consumer failed invocations', {
      metric: consumer.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }),
      threshold: 1,
    });
    // A failed step leaves the rotation pending; one that keeps failing stops the secret rotating.
    this.alarm(
      'LinkSecretRotationErrors',
      'A step of rotating the unsubscribe link secret failed: the secret keeps its versions until a rotation succeeds',
      {
        metric: linkSecretRotation.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }),
        threshold: 1,
      },
    );
    // A metric math alarm takes at most 10 metrics: one alarm per group of ten functions.
    for (let start = 0; start < functions.length; start += 10) {
      const group = functions.slice(start, start + 10);
      const usingMetrics = Object.fromEntries(
        group.map((fn, index) => [
          `t${index}`,
          fn.metricThrottles({ period: FIVE_MINUTES, statistic: 'Sum' }),
        ]),
      );
      this.alarm(
        `FunctionThrottles${start / 10 + 1}`,
        `Lambda throttled invocations of: ${group.map((fn) => fn.node.id).join(', ')}`,
        {
          metric: new MathExpression({
            expression: Object.keys(usingMetrics).join(' + '),
            usingMetrics,
            period: FIVE_MINUTES,
            label: 'throttles',
          }),
          threshold: 1,
        },
      );
    }
    Validations.of(this.health.role ?? this.health).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:${this.alarmNamePrefix}*]`,
      reason:
        "DescribeAlarms is limited to this stack's alarms by their name prefix; the names are not known before deployment.",
    });
  }
}
