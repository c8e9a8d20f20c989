import { ArnFormat, Duration, Stack, Validations } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { FilterCriteria, FilterRule, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Construct } from 'constructs';
import { INDEX, QUEUE, TABLE } from '../../lambdas/core/bindings';
import { ENQUEUE_BUDGET_MS, START_AHEAD_MS } from '../../lambdas/core/jobs/scheduled-jobs';
import { SETTING } from '../../lambdas/core/settings';
import type { MailerConfig } from '../config';
import { consumerScaling } from '../send-rate';
import type { MailerApi } from './api';
import type { MailerData } from './data';
import { ProjectFunction } from './project-function';
import type { EmailQueue } from './queue';

/**
 * The functions that take a job request (to send it, or to preview it): as long as API Gateway
 * waits, as a 10,000-recipient body is checked against the registry in one request.
 */
const JOB_REQUEST_SIZING = { timeout: Duration.seconds(29), memorySize: 1024 };

export interface EmailJobsProps {
  api: MailerApi;
  data: MailerData;
  queue: EmailQueue;
  config: MailerConfig;
  /** The SES configuration set every email is sent with (its events feed the suppression list); with the `ses` transport. */
  configurationSetName?: string | undefined;
}

/**
 * Email jobs: the routes that accept and report them, the consumer that renders and records each
 * email, the consumer of the dead-letter queue that records what could not be sent, and the
 * scheduled sweeper that re-enqueues recipients of stalled jobs. Each function is granted exactly
 * the table and queue actions its code calls.
 */
export class EmailJobs extends Construct {
  readonly consumer: ProjectFunction;
  readonly deadLetterConsumer: ProjectFunction;
  readonly sweeper: ProjectFunction;
  /** Starts scheduled jobs (`send_at`) at their time. */
  readonly starter: ProjectFunction;
  /** Counts outcomes into their jobs from the deliveries table's stream. */
  readonly counter: ProjectFunction;

  constructor(
    scope: Construct,
    id: string,
    { api, data, queue, config, configurationSetName }: EmailJobsProps,
  ) {
    super(scope, id);

    const sendEmail = new ProjectFunction(this, 'SendEmail', {
      entry: 'api/send-email.ts',
      description: 'POST /send-email',
      ...JOB_REQUEST_SIZING,
    })
      .bindTable(TABLE.nonprofits, data.nonprofits, ['dynamodb:BatchGetItem'])
      .bindTable(TABLE.jobs, data.jobs, ['dynamodb:GetItem', 'dynamodb:PutItem'])
      .bindTable(TABLE.jobContents, data.jobContents, ['dynamodb:PutItem'])
      .tellsEvents(data.outbox)
      // A cc address erased before is stored by its key (core/people), so it gets no copy.
      .knowsErased(data)
      .bindQueue(QUEUE.emails, queue.queue, ['sqs:SendMessage'])
      // The day's count is one conditional update; a job over the whole limit reads it to say what remains.
      .bindTable(TABLE.usage, data.usage, ['dynamodb:GetItem', 'dynamodb:UpdateItem'])
      .setting(SETTING.recipientQuotaPerDay, String(config.recipientQuotaPerDay))
      // The job's content and recipient lists, and its summary, expire then (README, "Personal data").
      .setting(SETTING.ledgerRetentionDays, String(config.ledgerRetentionDays))
      .setting(SETTING.jobRetentionDays, String(config.jobRetentionDays))
      .acknowledgeNoDeadLetterTarget('api');
    // It refuses a job whose emails could render too large: it sizes them as the consumer renders them.
    setRenderSettings(sendEmail, config);
    api.addRoute('POST', '/send-email', sendEmail, {
      throttle: { rateLimit: config.sendEmailRequestsPerMinute / 60, burstLimit: config.sendEmailBurstLimit },
    });

    // The same checks and rendering as a job, reading only the registry: it writes and enqueues nothing.
    const previewEmail = new ProjectFunction(this, 'PreviewEmail', {
      entry: 'api/preview-email.ts',
      description: 'POST /send-email/preview',
      ...JOB_REQUEST_SIZING,
    })
      .bindTable(TABLE.nonprofits, data.nonprofits, ['dynamodb:BatchGetItem'])
      .acknowledgeNoDeadLetterTarget('api');
    setRenderSettings(previewEmail, config);
    // Each call may read 10,000 nonprofits: a per-key throttle well below the plan's rate.
    api.addRoute('POST', '/send-email/preview', previewEmail, {
      throttle: { rateLimit: config.previewRequestsPerSecond, burstLimit: config.previewBurstLimit },
    });

    const listJobs = new ProjectFunction(this, 'ListJobs', {
      entry: 'api/list-jobs.ts',
      description: 'GET /jobs',
    })
      .bindTable(TABLE.jobs, data.jobs, [], { names: [INDEX.jobsByApiKey], actions: ['dynamodb:Query'] })
      .acknowledgeNoDeadLetterTarget('api');
    api.addRoute('GET', '/jobs', listJobs);

    const getJob = new ProjectFunction(this, 'GetJob', {
      entry: 'api/get-job.ts',
      description: 'GET /jobs/{job_id}',
    })
      .bindTable(TABLE.jobs, data.jobs, ['dynamodb:GetItem'])
      .bindTable(TABLE.jobContents, data.jobContents, ['dynamodb:GetItem'])
      .acknowledgeNoDeadLetterTarget('api');
    api.addRoute('GET', '/jobs/{job_id}', getJob);
    api.addRoute('GET', '/jobs/{job_id}/status', getJob);

    const listEmails = new ProjectFunction(this, 'ListJobEmails', {
      entry: 'api/list-job-emails.ts',
      description: 'GET /jobs/{job_id}/emails',
    })
      .bindTable(TABLE.jobs, data.jobs, ['dynamodb:GetItem'])
      .bindTable(TABLE.jobContents, data.jobContents, ['dynamodb:GetItem', 'dynamodb:Query'])
      .bindTable(TABLE.deliveries, data.deliveries, ['dynamodb:BatchGetItem'])
      .setting(SETTING.storeRenderedEmails, String(data.renderedEmails !== undefined))
      .acknowledgeNoDeadLetterTarget('api');
    if (data.renderedEmails)
      listEmails.bindTable(TABLE.renderedEmails, data.renderedEmails, ['dynamodb:BatchGetItem']);
    // Emails are rendered again from their snapshots, as the consumer rendered them.
    setRenderSettings(listEmails, config);
    api.addRoute('GET', '/jobs/{job_id}/emails', listEmails);

    const getUsage = new ProjectFunction(this, 'GetUsage', {
      entry: 'api/get-usage.ts',
      description: 'GET /usage',
    })
      .bindTable(TABLE.usage, data.usage, ['dynamodb:GetItem'])
      .setting(SETTING.recipientQuotaPerDay, String(config.recipientQuotaPerDay))
      .setting(SETTING.usagePlanRateLimit, String(config.usagePlanRateLimit))
      .setting(SETTING.usagePlanBurstLimit, String(config.usagePlanBurstLimit))
      .setting(SETTING.usagePlanQuotaPerDay, String(config.usagePlanQuotaPerDay))
      .acknowledgeNoDeadLetterTarget('api');
    api.addRoute('GET', '/usage', getUsage);

    // Records the cancel on the job; the consumers see it before each send and record the rest cancelled.
    // A scheduled job ends at once (told as the counter tells an end), its quota given back.
    const cancelJob = new ProjectFunction(this, 'CancelJob', {
      entry: 'api/cancel-job.ts',
      description: 'POST /jobs/{job_id}/cancel',
    })
      .bindTable(TABLE.jobs, data.jobs, ['dynamodb:GetItem', 'dynamodb:UpdateItem'])
      .bindTable(TABLE.jobContents, data.jobContents, ['dynamodb:GetItem'])
      .bindTable(TABLE.usage, data.usage, ['dynamodb:UpdateItem'])
      .setting(SETTING.recipientQuotaPerDay, String(config.recipientQuotaPerDay))
      .tellsEvents(data.outbox)
      .acknowledgeNoDeadLetterTarget('api');
    api.addRoute('POST', '/jobs/{job_id}/cancel', cancelJob);

    // Reads the job's failures, takes the retryable ones back to queued with the job's counters (in
    // transactions: UpdateItem on both tables), and enqueues them: a send, throttled as one.
    const retryJob = new ProjectFunction(this, 'RetryJob', {
      entry: 'api/retry-job.ts',
      description: 'POST /jobs/{job_id}/retry',
      ...JOB_REQUEST_SIZING,
    })
      .bindTable(TABLE.jobs, data.jobs, ['dynamodb:GetItem', 'dynamodb:UpdateItem'])
      .bindTable(TABLE.deliveries, data.deliveries, ['dynamodb:Query', 'dynamodb:UpdateItem'])
      // How many partition keys the job's deliveries are spread over.
      .bindTable(TABLE.jobContents, data.jobContents, ['dynamodb:GetItem'])
      .bindTable(TABLE.suppressions, data.suppressions, ['dynamodb:BatchGetItem'])
      .bindQueue(QUEUE.emails, queue.queue, ['sqs:SendMessage'])
      .acknowledgeNoDeadLetterTarget('api');
    api.addRoute('POST', '/jobs/{job_id}/retry', retryJob, {
      throttle: { rateLimit: config.sendEmailRequestsPerMinute / 60, burstLimit: config.sendEmailBurstLimit },
    });

    const consumerTimeout = Duration.seconds(config.consumerTimeoutSeconds);
    const scaling = consumerScaling(config);
    this.consumer = new ProjectFunction(this, 'SendEmails', {
      entry: 'worker/send-emails.ts',
      description: 'Claims, renders, sends and records the emails of a batch',
      timeout: consumerTimeout,
      memorySize: config.consumerMemoryMb,
    })
      .bindTable(TABLE.nonprofits, data.nonprofits, ['dynamodb:BatchGetItem'])
      // The job is only read (whether it was cancelled): its counters follow from the deliveries' stream.
      .bindTable(TABLE.jobs, data.jobs, ['dynamodb:GetItem'])
      .bindTable(TABLE.jobContents, data.jobContents, ['dynamodb:GetItem'])
      // Claims (a chunk's, or a recipient's), copies' hand-overs, releases and outcomes are each one
      // conditional update; a chunk taken over is read first.
      .bindTable(TABLE.deliveries, data.deliveries, ['dynamodb:UpdateItem', 'dynamodb:BatchGetItem'])
      .bindTable(TABLE.suppressions, data.suppressions, ['dynamodb:BatchGetItem'])
      // Recipients a cancel kept from being sent go back to their key's quota.
      .bindTable(TABLE.usage, data.usage, ['dynamodb:UpdateItem'])
      .setting(SETTING.recipientQuotaPerDay, String(config.recipientQuotaPerDay))
      // Emails that must wait (throttled, paused, out of time) go back to the queue as new, delayed
      // messages; one another consumer holds is hidden until that claim's lease ends.
      .bindQueue(QUEUE.emails, queue.queue, ['sqs:SendMessage', 'sqs:ChangeMessageVisibility'])
      .setting(SETTING.claimLeaseSeconds, String(claimLeaseSeconds(config)))
      // Each delivery it writes expires then (personal data: the README's "Personal data").
      .setting(SETTING.ledgerRetentionDays, String(config.ledgerRetentionDays))
      .setting(SETTING.sendingPausedWaitSeconds, String(config.sendingPausedWaitSeconds))
      .setting(SETTING.emailTransport, config.transport)
      .setting(SETTING.storeRenderedEmails, String(data.renderedEmails !== undefined))
      .acknowledgeNoDeadLetterTarget('queue');
    setRenderSettings(this.consumer, config);
    if (data.renderedEmails) {
      this.consumer
        .bindTable(TABLE.renderedEmails, data.renderedEmails, ['dynamodb:PutItem'])
        .setting(SETTING.renderedEmailRetentionDays, String(config.renderedEmailRetentionDays));
    }
    if (scaling.ratePerEnvironment !== undefined) {
      this.consumer.setting(SETTING.sendRatePerEnvironment, String(scaling.ratePerEnvironment));
    }
    if (config.transport === 'ses') grantSesSend(this.consumer, config, configurationSetName);
    consumeQueue(
      this.consumer,
      new SqsEventSource(queue.queue, {
        batchSize: scaling.batchSize,
        maxBatchingWindow: Duration.seconds(config.consumerBatchingWindowSeconds),
        maxConcurrency: scaling.maxConcurrency,
        reportBatchItemFailures: true,
      }),
    );

    this.deadLetterConsumer = new ProjectFunction(this, 'RecordDeadLetters', {
      entry: 'worker/record-dead-letters.ts',
      description:
        'Records emails that reached the dead-letter queue as failed, or cancelled if their job was',
      timeout: consumerTimeout,
    })
      .bindTable(TABLE.jobs, data.jobs, ['dynamodb:GetItem'])
      .bindTable(TABLE.jobContents, data.jobContents, ['dynamodb:GetItem'])
      .bindTable(TABLE.deliveries, data.deliveries, ['dynamodb:UpdateItem', 'dynamodb:BatchGetItem'])
      // A dead letter of a cancelled job is recorded cancelled, and given back to its key's quota.
      .bindTable(TABLE.usage, data.usage, ['dynamodb:UpdateItem'])
      .setting(SETTING.recipientQuotaPerDay, String(config.recipientQuotaPerDay))
      .setting(SETTING.claimLeaseSeconds, String(claimLeaseSeconds(config)))
      // Each delivery it writes expires then (personal data: the README's "Personal data").
      .setting(SETTING.ledgerRetentionDays, String(config.ledgerRetentionDays))
      .acknowledgeNoDeadLetterTarget('queue');
    consumeQueue(
      this.deadLetterConsumer,
      new SqsEventSource(queue.deadLetterQueue, {
        batchSize: 10,
        maxConcurrency: 2,
        reportBatchItemFailures: true,
      }),
    );

    this.counter = new ProjectFunction(this, 'CountOutcomes', {
      entry: 'worker/count-outcomes.ts',
      description:
        "Adds the outcomes the deliveries table's stream records to their jobs' counters, and ends jobs",
      timeout: Duration.minutes(1),
    })
      // One transaction per job of a batch: the batch's mark and the job's counters (both updates);
      // an ended job is read for its duration.
      .bindTable(TABLE.jobs, data.jobs, ['dynamodb:UpdateItem', 'dynamodb:GetItem'])
      .tellsEvents(data.outbox)
      .acknowledgeNoDeadLetterTarget('stream');
    this.counter.addEventSource(
      new DynamoEventSource(data.deliveries, {
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize: 1000,
        maxBatchingWindow: Duration.seconds(config.countingWindowSeconds),
        // Retried from the same record until it is counted: a batch is never split (its first record
        // names each job's part of it) nor dropped (a dropped outcome would leave its job running).
        bisectBatchOnError: false,
        retryAttempts: -1,
        // Outcomes are writes; a delivery's removal (its retention's TTL) counts nothing and invokes nothing.
        filters: [FilterCriteria.filter({ eventName: FilterRule.or('INSERT', 'MODIFY') })],
      }),
    );
    Validations.of(this.counter).acknowledge({
      id: 'Serverless::Serverless-LambdaEventSourceMappingDestination',
      reason:
        'The stream batch is retried until it is counted (a dropped batch would leave jobs running with wrong counts); the IteratorAge alarm says when it is stuck.',
    });

    this.sweeper = new ProjectFunction(this, 'SweepStaleJobs', {
      entry: 'worker/sweep-stale-jobs.ts',
      description: 'Re-enqueues the recipients of running jobs whose messages can no longer be queued',
      timeout: Duration.minutes(5),
      memorySize: 1024,
    })
      .bindTable(TABLE.jobs, data.jobs, ['dynamodb:UpdateItem'], {
        names: [INDEX.activeJobs],
        actions: ['dynamodb:Query'],
      })
      // The recipient lists (parts 1…), and part 0 for how many keys the deliveries are spread over.
      .bindTable(TABLE.jobContents, data.jobContents, ['dynamodb:Query', 'dynamodb:GetItem'])
      .bindTable(TABLE.deliveries, data.deliveries, ['dynamodb:Query'])
      // A job it ends from its ledger is told as the counter tells one.
      .tellsEvents(data.outbox)
      .bindQueue(QUEUE.emails, queue.queue, ['sqs:SendMessage', 'sqs:GetQueueAttributes'])
      .bindQueue(QUEUE.deadLetters, queue.deadLetterQueue, ['sqs:GetQueueAttributes'])
      .setting(SETTING.sweeperQueueSettleSeconds, String(config.sweeperQueueSettleSeconds))
      .setting(SETTING.ledgerCountAfterSeconds, String(config.ledgerCountAfterSeconds))
      .acknowledgeNoDeadLetterTarget('schedule');
    const schedule = new Rule(this, 'SweepSchedule', {
      description: 'Runs the sweeper of stalled email jobs',
      schedule: Schedule.rate(Duration.minutes(config.sweeperRateMinutes)),
      targets: [new LambdaFunction(this.sweeper, { retryAttempts: 0 })],
    });
    Validations.of(schedule).acknowledge({
      id: 'Serverless::Serverless-EventBusDLQ',
      reason:
        'A scheduled tick that is not delivered is followed by the next one, which does all outstanding work.',
    });

    // Scheduled jobs (`send_at`): every minute, the starter reads the sparse index of waiting jobs
    // and starts each at its time, waiting within the run for those due in the next two minutes
    // (START_AHEAD_MS), with time kept to enqueue the last (hence the timeout). A job it started
    // whose enqueue failed is the sweeper's, as at acceptance.
    this.starter = new ProjectFunction(this, 'StartScheduledJobs', {
      entry: 'worker/start-scheduled-jobs.ts',
      description: 'Starts scheduled jobs at their send_at: enqueues their recipients',
      timeout: Duration.millis(START_AHEAD_MS + ENQUEUE_BUDGET_MS + 60_000),
    })
      .bindTable(TABLE.jobs, data.jobs, ['dynamodb:UpdateItem'], {
        names: [INDEX.scheduledJobs],
        actions: ['dynamodb:Query'],
      })
      .bindTable(TABLE.jobContents, data.jobContents, ['dynamodb:Query'])
      .bindQueue(QUEUE.emails, queue.queue, ['sqs:SendMessage'])
      .acknowledgeNoDeadLetterTarget('schedule');
    const starts = new Rule(this, 'StartSchedule', {
      description: 'Starts scheduled email jobs whose time has come',
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [new LambdaFunction(this.starter, { retryAttempts: 0 })],
    });
    Validations.of(starts).acknowledge({
      id: 'Serverless::Serverless-EventBusDLQ',
      reason:
        'A tick that is not delivered is followed by the next one a minute later, which starts every job due by then.',
    });
  }
}

/**
 * How emails are rendered (`RENDER_SETTINGS`): the size limit, the default subject and the sender
 * the footer names. The consumer renders with them; the send and preview routes size and show
 * emails with the same, so what they accept the consumer can send.
 */
function setRenderSettings(fn: ProjectFunction, config: MailerConfig): void {
  fn.setting(SETTING.maxRenderedEmailBytes, String(config.maxRenderedEmailBytes)).setting(
    SETTING.defaultSubject,
    config.defaultSubject,
  );
  if (config.senderName) fn.setting(SETTING.senderName, config.senderName);
  if (config.senderPostalAddress) fn.setting(SETTING.senderPostalAddress, config.senderPostalAddress);
}

/**
 * How long a consumer's claim on a recipient holds: past the consumer's timeout (Lambda has ended it
 * by then; the margin covers clocks), and within the queue's visibility timeout (six times the
 * timeout), so a retried message finds the claim of a consumer that died lapsed rather than held.
 */
function claimLeaseSeconds(config: MailerConfig): number {
  return config.consumerTimeoutSeconds + Math.min(10, 2 * config.consumerTimeoutSeconds);
}

/**
 * The consumer may send only as `fromAddress`: `ses:SendEmail` on that address's identity and its
 * domain's (SES authorizes against whichever of the two is verified), only with that From address,
 * and with its configuration set. In the SES sandbox (`sesSandbox`), SES also authorizes
 * against each recipient's identity, so any identity is allowed there, still only from `fromAddress`.
 */
function grantSesSend(fn: ProjectFunction, config: MailerConfig, configurationSet: string | undefined): void {
  const stack = Stack.of(fn);
  const fromAddress = config.fromAddress as string;
  const identity = (name: string) =>
    stack.formatArn({
      service: 'ses',
      resource: 'identity',
      resourceName: name,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  // Domain identities are named in lower case (as `senderDomain` creates them): DNS ignores case, IAM does not.
  const domain = fromAddress.slice(fromAddress.lastIndexOf('@') + 1).toLowerCase();
  const resources = config.sesSandbox ? [identity('*')] : [identity(fromAddress), identity(domain)];
  if (configurationSet) {
    resources.push(
      stack.formatArn({
        service: 'ses',
        resource: 'configuration-set',
        resourceName: configurationSet,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      }),
    );
  }
  fn.addToRolePolicy(
    new PolicyStatement({
      actions: ['ses:SendEmail'],
      resources,
      conditions: { StringEquals: { 'ses:FromAddress': fromAddress } },
    }),
  );
  if (config.sesSandbox) {
    Validations.of(fn.role ?? fn).acknowledge({
      id: 'AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>:identity/*]',
      reason:
        'In the SES sandbox SES authorizes each send against the recipient identity too; the statement still allows only ses:SendEmail from fromAddress (ses:FromAddress condition).',
    });
  }
  fn.setting(SETTING.sesFromAddress, fromAddress);
  if (config.replyTo) fn.setting(SETTING.sesReplyTo, config.replyTo);
  if (configurationSet) fn.setting(SETTING.sesConfigurationSet, configurationSet);
}

/** Attaches an SQS event source; failed messages go back to the queue and, at last, to its dead-letter queue. */
export function consumeQueue(fn: ProjectFunction, source: SqsEventSource): void {
  fn.addEventSource(source);
  Validations.of(fn).acknowledge({
    id: 'Serverless::Serverless-LambdaEventSourceMappingDestination',
    reason:
      "SQS event sources take no on-failure destination: the queue's redrive policy moves failed messages to the dead-letter queue.",
  });
}
