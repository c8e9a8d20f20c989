import { z } from 'zod';
import { documentClient, sqsClient } from './aws-clients';
import { bound, QUEUE, TABLE } from './bindings';
import { readEnv } from './env';
import { DynamoDeliveries } from './jobs/deliveries';
import { DynamoJobContents } from './jobs/dynamodb/dynamo-job-contents';
import { DynamoJobStore } from './jobs/dynamodb/dynamo-job-store';
import { DynamoNonprofitRepository } from './nonprofits/repository';
import { SqsEmailQueue } from './queue/email-queue';
import { SqsQueueGauge } from './queue/queue-depth';
import { TRANSPORTS, type TransportName } from './transport/transport';

/**
 * The production adapters, each built from the bindings the stack gives a function (see
 * bindings.ts). A handler builds only what it uses, at cold start, and every binding an adapter
 * needs is required: a function the stack did not bind fails there, naming the variable.
 */

export const nonprofitsFromEnv = () =>
  new DynamoNonprofitRepository({ client: documentClient, tableName: bound(TABLE.nonprofits) });

export const jobsFromEnv = () => new DynamoJobStore({ client: documentClient, tableName: bound(TABLE.jobs) });

export const jobContentsFromEnv = () =>
  new DynamoJobContents({ client: documentClient, tableName: bound(TABLE.jobContents) });

export const deliveriesFromEnv = () =>
  new DynamoDeliveries({
    client: documentClient,
    jobsTable: bound(TABLE.jobs),
    deliveriesTable: bound(TABLE.deliveries),
  });

export const emailQueueFromEnv = () => new SqsEmailQueue(sqsClient, bound(QUEUE.emails));

/** The depth of the email queue and of its dead-letter queue. */
export const queueGaugesFromEnv = () => ({
  emails: new SqsQueueGauge(sqsClient, bound(QUEUE.emails)),
  deadLetters: new SqsQueueGauge(sqsClient, bound(QUEUE.deadLetters)),
});

export function transportFromEnv() {
  const names = Object.keys(TRANSPORTS) as [TransportName, ...TransportName[]];
  const env = readEnv({ EMAIL_TRANSPORT: z.enum(names).default('record') });
  return TRANSPORTS[env.EMAIL_TRANSPORT]();
}
