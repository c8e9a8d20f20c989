import { Duration } from 'aws-cdk-lib';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import {
  ConfigurationSet,
  ConfigurationSetEventDestination,
  EmailSendingEvent,
  EventDestination,
  type IConfigurationSet,
} from 'aws-cdk-lib/aws-ses';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { SqsSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { TABLE } from '../../lambdas/core/bindings';
import { SETTING } from '../../lambdas/core/settings';
import type { MailerConfig } from '../config';
import type { MailerData } from './data';
import { consumeQueue } from './email-jobs';
import { ProjectFunction } from './project-function';
import { workQueue } from './queue';
import { publisherTopicKey } from './topic-key';

export interface SesFeedbackProps {
  data: MailerData;
  config: MailerConfig;
}

/** Receives of one feedback message before it moves to the dead-letter queue. */
const MAX_RECEIVES = 5;
const FEEDBACK_TIMEOUT = Duration.seconds(30);

/**
 * What SES says after it took an email: the configuration set every email is sent with publishes
 * bounces and complaints to an SNS topic, an SQS queue subscribed to it (raw message delivery: the
 * body is SES's event document) holds them, and a function suppresses the addresses and notes each
 * report on its delivery and job. The set is this stack's own, or the user's `sesConfigurationSet`
 * (kept for its dedicated IPs or other destinations), to which this stack adds its destination.
 */
export class SesFeedback extends Construct {
  readonly configurationSet: IConfigurationSet;
  readonly topic: Topic;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly handler: ProjectFunction;

  constructor(scope: Construct, id: string, { data, config }: SesFeedbackProps) {
    super(scope, id);
    this.configurationSet = config.sesConfigurationSet
      ? ConfigurationSet.fromConfigurationSetName(this, 'ConfigurationSet', config.sesConfigurationSet)
      : // Reputation metrics: SES's bounce and complaint rates for this set, beside the account's.
        new ConfigurationSet(this, 'ConfigurationSet', { reputationMetrics: true, sendingEnabled: true });

    this.topic = new Topic(this, 'Topic', {
      displayName: 'nonprofit-mailer SES bounces and complaints',
      masterKey: publisherTopicKey(this, 'TopicKey', {
        description: 'Encrypts the nonprofit-mailer SES feedback topic; SES may publish to it',
        service: 'ses.amazonaws.com',
        statementId: 'SesEventPublishing',
      }),
      enforceSSL: true,
    });
    ({ queue: this.queue, deadLetterQueue: this.deadLetterQueue } = workQueue(
      this,
      { queue: 'Events', deadLetters: 'DeadLetters' },
      {
        consumerTimeout: FEEDBACK_TIMEOUT,
        retention: Duration.days(14),
        maxReceiveCount: MAX_RECEIVES,
        deadLetterReason:
          'This is the dead-letter queue of SES feedback: an operator reads what could not be recorded (an alarm watches its depth).',
        encryptionKey: data.key,
      },
    ));
    // Raw delivery: the message body is SES's event itself. What SNS cannot deliver goes to the same dead-letter queue.
    this.topic.addSubscription(
      new SqsSubscription(this.queue, { rawMessageDelivery: true, deadLetterQueue: this.deadLetterQueue }),
    );
    new ConfigurationSetEventDestination(this, 'BouncesAndComplaints', {
      configurationSet: this.configurationSet,
      destination: EventDestination.snsTopic(this.topic),
      events: [EmailSendingEvent.BOUNCE, EmailSendingEvent.COMPLAINT],
    });

    this.handler = new ProjectFunction(this, 'RecordFeedback', {
      entry: 'worker/record-feedback.ts',
      description:
        'Suppresses addresses SES reports bounced or complaining, and notes each report on its job',
      timeout: FEEDBACK_TIMEOUT,
    })
      // A suppression is a conditional put; a refused one reads the record kept.
      .bindTable(TABLE.suppressions, data.suppressions, ['dynamodb:PutItem', 'dynamodb:GetItem'])
      .bindTable(TABLE.jobs, data.jobs, ['dynamodb:GetItem', 'dynamodb:UpdateItem'])
      .bindTable(TABLE.deliveries, data.deliveries, ['dynamodb:UpdateItem'])
      // Each report noted is told (Email Bounced, Email Complained), and a pause it makes.
      .tellsEvents(data.outbox)
      // The suppressions it adds and the guard's pauses are recorded.
      .keepsAudit(data.audit, config.auditRetentionDays)
      // A report on an erased address's earlier email finds it suppressed under its key: nothing stored.
      .bindSecret(SETTING.addressKeySecretArn, data.addressKey)
      // A job's content says how many partition keys its deliveries are spread over.
      .bindTable(TABLE.jobContents, data.jobContents, ['dynamodb:GetItem'])
      .acknowledgeNoDeadLetterTarget('queue');
    consumeQueue(
      this.handler,
      new SqsEventSource(this.queue, { batchSize: 10, maxConcurrency: 2, reportBatchItemFailures: true }),
    );
  }

  get configurationSetName(): string {
    return this.configurationSet.configurationSetName;
  }
}
