import { randomUUID } from 'node:crypto';
import { SetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { inject } from 'vitest';
import { type AcceptJobDependencies, acceptJob } from '../../lambdas/core/jobs/accept-job';
import type { DeliveryRecord } from '../../lambdas/core/jobs/deliveries';
import { DynamoDeliveries } from '../../lambdas/core/jobs/dynamodb/dynamo-deliveries';
import { DynamoJobContents } from '../../lambdas/core/jobs/dynamodb/dynamo-job-contents';
import { DynamoJobStore } from '../../lambdas/core/jobs/dynamodb/dynamo-job-store';
import { DynamoRenderedEmails } from '../../lambdas/core/jobs/dynamodb/dynamo-rendered-emails';
import type { JobRecord } from '../../lambdas/core/jobs/job';
import { listJobEmails } from '../../lambdas/core/jobs/job-emails';
import type { ProcessEmailsDependencies } from '../../lambdas/core/jobs/process-emails';
import { sweepStaleJobs } from '../../lambdas/core/jobs/sweep';
import { DynamoNonprofitRepository } from '../../lambdas/core/nonprofits/dynamodb/dynamo-nonprofit-repository';
import { type EmailQueue, SqsEmailQueue } from '../../lambdas/core/queue/email-queue';
import { SqsQueueGauge } from '../../lambdas/core/queue/queue-depth';
import { DynamoSuppressionList } from '../../lambdas/core/suppressions/dynamodb/dynamo-suppression-list';
import type { SendPacer } from '../../lambdas/core/transport/send-pacer';
import { SesTransport } from '../../lambdas/core/transport/ses-transport';
import type { EmailTransport } from '../../lambdas/core/transport/transport';
import { makeRecordDeadLetters } from '../../lambdas/worker/record-dead-letters';
import { makeSendEmails } from '../../lambdas/worker/send-emails';
import { dynamoDbClient } from '../../local/dynamodb';
import { QueueEventSource } from '../../local/event-sources';
import { readInbox, sesClient, startLocalSes } from '../../local/ses';
import { createQueues, sqsClient, startLocalSqs } from '../../local/sqs';
import { IntrinsicResolver } from '../../local/template';
import { asInvocation, lambdaContext } from './api-events';
import { tableNamed } from './local-tables';
import { startOutcomeCounter } from './outcome-counter';
import { synthesizeForTests } from './synth';

type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

type Deliveries = ProcessEmailsDependencies['deliveries'];

/** The pipeline's unsubscribe links, as the stack's secret and API URL give the consumer. */

/** How the pipeline's consumer renders, and its job's emails are rendered again when read. */
const PIPELINE_RENDER_SETTINGS = { maxRenderedBytes: 256 * 1024, defaultSubject: '(no subject)' };
export const PIPELINE_LINK_SECRET = 'pipeline-link-secret-'.padEnd(64, 'x');
export const PIPELINE_UNSUBSCRIBE_URL = 'https://mail.example.org/v1/unsubscribe';

/**
 * A consumer invocation's context with a real deadline, `timeoutMs` from now. As in the stack, a
 * claim's lease outlasts the consumer's timeout (twice a timeout under 5 s): a consumer told it had
 * time for ever could still be sending a chunk whose lease another consumer has taken over, on a
 * machine slow enough, and mail its recipients twice.
 */
function invocationContext(timeoutMs: number): Context {
  const endsAt = Date.now() + timeoutMs;
  return {
    ...lambdaContext,
    awsRequestId: randomUUID(),
    getRemainingTimeInMillis: () => Math.max(0, endsAt - Date.now()),
  };
}

/** Where the pipeline sends from, as the stack's `fromAddress`. */
export const PIPELINE_FROM = 'news@pipeline.example.org';

export interface PipelineOptions {
  /** Wraps the SES transport (to the local SES), or replaces it, to inject faults where emails are sent. */
  transport?: (ses: EmailTransport) => EmailTransport;
  /** Wraps the deliveries (claims and recorder), to inject faults where claims and outcomes are written. */
  deliveries?: (real: Deliveries) => Deliveries;
  /** Paces the consumer's sends, as the stack's SEND_RATE_PER_ENVIRONMENT does. */
  pacer?: SendPacer;
  /** How long a claim holds: as in the stack, past a consumer's run and within the visibility timeout (a second longer here). */
  leaseMs?: number;
  /** Wraps the queue the API enqueues to, to inject faults where messages are sent. */
  queue?: (real: EmailQueue) => Pick<EmailQueue, 'enqueue'>;
  /** Wraps the consumer invocation, to make it fail after (or instead of) its work. */
  consumer?: (real: SqsHandler) => SqsHandler;
  concurrency?: number;
  /**
   * Each consumer invocation's timeout: half the lease by default, as in the stack. Longer only where
   * one consumer runs (nothing can take its chunks over) and no email may wait for time.
   */
  consumerTimeoutMs?: number;
  /** Messages per consumer batch (10, as the stack's default). */
  batchSize?: number;
}

/**
 * The email pipeline in-process against the real engines: DynamoDB Local (from the global set-up),
 * a local SQS of its own with the template's queues and redrive policy, and the event source
 * emulation feeding the real consumer handlers. Faults are injected by wrapping one part.
 */
export async function startPipeline(options: PipelineOptions = {}) {
  const dynamo = dynamoDbClient(inject('dynamoDbEndpoint'));
  const client = DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } });
  const nonprofits = new DynamoNonprofitRepository({
    client,
    tableName: tableNamed('DataNonprofits'),
  });
  const jobs = new DynamoJobStore({ client, tableName: tableNamed('DataJobs') });
  const contents = new DynamoJobContents({ client, tableName: tableNamed('DataJobContents') });
  const leaseMs = options.leaseMs ?? 3_000;
  const deliveries = new DynamoDeliveries({
    client,
    jobsTable: tableNamed('DataJobs'),
    deliveriesTable: tableNamed('DataDeliveries'),
    leaseMs,
    // As the functions do: a large job's deliveries are spread over the keys its content names.
    shardsOf: async (jobId) => (await contents.content(jobId))?.delivery_shards ?? 1,
  });
  const suppressions = new DynamoSuppressionList({ client, tableName: tableNamed('DataSuppressions') });
  const rendered = new DynamoRenderedEmails({
    client,
    tableName: tableNamed('DataRenderedEmails'),
    retentionDays: 30,
  });
  const ses = await startLocalSes();
  const ses2 = sesClient(ses.endpoint);
  const sesTransport = new SesTransport({ client: ses2, fromAddress: PIPELINE_FROM });

  const sqsServer = await startLocalSqs();
  const sqs = sqsClient(sqsServer.endpoint);
  const { template } = synthesizeForTests();
  const queues = await createQueues(sqs, template, new IntrinsicResolver(template));
  const main = queues.find((queue) => queue.logicalId.startsWith('QueueEmails'));
  const deadLetters = queues.find((queue) => queue.logicalId.startsWith('QueueDeadLetters'));
  if (!main || !deadLetters) throw new Error('The template lacks the email queue or its dead-letter queue');
  // The template's redrive policy is kept; only the visibility timeout is cut so retries take seconds.
  // It stays longer than a claim's lease, as in the stack: a retried message finds its claim lapsed.
  await sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: main.url,
      Attributes: { VisibilityTimeout: String(Math.ceil(leaseMs / 1_000) + 1) },
    }),
  );

  const realQueue = new SqsEmailQueue(sqs, main.url);
  const queue = options.queue ? options.queue(realQueue) : realQueue;
  const consumerDeliveries = options.deliveries ? options.deliveries(deliveries) : deliveries;
  const realConsumer: SqsHandler = makeSendEmails({
    contents,
    jobs,
    nonprofits,
    transport: options.transport ? options.transport(sesTransport) : sesTransport,
    deliveries: consumerDeliveries,
    suppressions,
    unsubscribe: {
      secret: { versions: async () => ({ current: PIPELINE_LINK_SECRET }) },
      url: PIPELINE_UNSUBSCRIBE_URL,
    },
    queue: realQueue,
    rendered,
    settings: PIPELINE_RENDER_SETTINGS,
    pacer: options.pacer,
    // Throttled and paused emails wait a second here, not the stack's quarter minute.
    waits: { throttledSeconds: 1, pausedSeconds: 1 },
  });
  const consumer = options.consumer ? options.consumer(realConsumer) : realConsumer;
  const deadLetterConsumer = makeRecordDeadLetters({ contents, deliveries, jobs });
  const log = () => undefined;
  const sources = [
    new QueueEventSource({
      client: sqs,
      queueUrl: main.url,
      queueArn: main.arn,
      batchSize: options.batchSize ?? 10,
      batchingWindowMs: 100,
      maxConcurrency: options.concurrency ?? 4,
      reportBatchItemFailures: true,
      invoke: (event) =>
        asInvocation(() =>
          consumer(event as SQSEvent, invocationContext(options.consumerTimeoutMs ?? leaseMs / 2)),
        ),
      log,
    }),
    new QueueEventSource({
      client: sqs,
      queueUrl: deadLetters.url,
      queueArn: deadLetters.arn,
      batchSize: 10,
      batchingWindowMs: 0,
      maxConcurrency: 2,
      reportBatchItemFailures: true,
      invoke: (event) => asInvocation(() => deadLetterConsumer(event as SQSEvent, lambdaContext)),
      log,
    }),
  ];

  // The jobs' counters follow the deliveries' stream, as in the stack; read from here on.
  const counter = await startOutcomeCounter();

  const acceptDeps: AcceptJobDependencies = {
    jobs,
    contents,
    nonprofits,
    queue,
    onEnqueueFailure: () => undefined,
  };
  const gauges = {
    emails: new SqsQueueGauge(sqs, main.url),
    deadLetters: new SqsQueueGauge(sqs, deadLetters.url),
  };
  return {
    jobs,
    contents,
    deliveries,
    nonprofits,
    suppressions,
    queue: realQueue,
    gauges,
    start: () => {
      for (const source of sources) source.start();
    },
    /** Registers `count` nonprofits in a domain of their own and returns their emails. */
    async registerNonprofits(count: number): Promise<string[]> {
      const domain = `${randomUUID().slice(0, 8)}.example.org`;
      const emails = Array.from({ length: count }, (_, n) => `member${String(n).padStart(4, '0')}@${domain}`);
      for (let start = 0; start < emails.length; start += 25) {
        await Promise.all(
          emails
            .slice(start, start + 25)
            .map((email, n) =>
              nonprofits.create({ email, name: `Member ${start + n}`, address: `${start + n} Main St` }),
            ),
        );
      }
      return emails;
    },
    /** Accepts a job as the API does. Its enqueue deadline is "now": sweep only after the call returns. */
    submit: (
      emails: string[],
      template = 'Dear {name} of {address}',
      apiKeyId = 'key-1',
      { subject = 'For {name}', cc = [] as string[] } = {},
    ) =>
      acceptJob(acceptDeps, {
        apiKeyId,
        request: { emails, template, subject, cc },
        enqueueDeadline: new Date(),
      }),
    async waitForEnd(jobId: string, timeoutMs = 60_000): Promise<JobRecord> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const job = await jobs.get(jobId);
        if (job && (job.status === 'completed' || job.status === 'failed')) return job;
        if (Date.now() > deadline)
          throw new Error(
            `Job ${jobId} did not end: ${JSON.stringify(job)} ${JSON.stringify(counter.failures)}`,
          );
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    /** One sweeper run over the real stores and queue. */
    sweep: (settleMs: number) =>
      sweepStaleJobs({
        jobs,
        contents,
        deliveries,
        queue: realQueue,
        gauges,
        settleMs,
        // The deployed default: these tests never wait so long for a count.
        ledgerCountAfterMs: 300_000,
        deadline: new Date(Date.now() + 60_000),
      }),
    async recorded(jobId: string, recipients: string[]): Promise<Map<string, DeliveryRecord>> {
      return deliveries.getMany(jobId, recipients);
    },
    rendered,
    /** The first 100 of a job's emails as `GET /jobs/{id}/emails` shows them (rendered again from their snapshots). */
    async emails(job: JobRecord) {
      const deps = { contents, deliveries, rendered, settings: PIPELINE_RENDER_SETTINGS };
      return (await listJobEmails(deps, job, { limit: 100, offset: 0 })).items;
    },
    /** How many emails the local SES received for each of these recipients. */
    async emailsReceived(recipients: readonly string[]): Promise<Map<string, number>> {
      const counts = new Map(recipients.map((recipient) => [recipient, 0]));
      for (const email of await readInbox(ses.inboxUrl)) {
        for (const to of email.destination.to) {
          const count = counts.get(to);
          if (count !== undefined) counts.set(to, count + 1);
        }
      }
      return counts;
    },
    inbox: () => readInbox(ses.inboxUrl),
    /** What the stream's counter logged (a failed count, an unreadable shard). */
    counterFailures: counter.failures,
    async stop() {
      await Promise.all(sources.map((source) => source.stop()));
      await counter.stop();
      await ses.stop();
      ses2.destroy();
      await sqsServer.stop();
      sqs.destroy();
      dynamo.destroy();
    },
  };
}
