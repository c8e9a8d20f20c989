import { z } from 'zod';
import { documentClient, sqsClient } from './aws-clients';
import { readEnv, tableName } from './env';
import { DynamoDeliveries } from './jobs/deliveries';
import { DynamoJobStore } from './jobs/job-store';
import { DynamoNonprofitRepository } from './nonprofits/repository';
import { SqsEmailQueue } from './queue/email-queue';
import { TRANSPORTS, type TransportName } from './transport/transport';

/**
 * The production adapters, each built from the environment variables the stack gives a function
 * that uses it. A handler builds only what it uses, at cold start, so a missing variable fails
 * there, named.
 */

const indexName = z.string().min(3);

export function nonprofitsFromEnv() {
  const env = readEnv({ NONPROFITS_TABLE: tableName, NONPROFITS_DOMAIN_INDEX: indexName.optional() });
  return new DynamoNonprofitRepository({
    client: documentClient,
    tableName: env.NONPROFITS_TABLE,
    domainIndexName: env.NONPROFITS_DOMAIN_INDEX,
  });
}

export function jobsFromEnv() {
  const env = readEnv({
    JOBS_TABLE: tableName,
    JOB_CONTENTS_TABLE: tableName.optional(),
    JOBS_BY_API_KEY_INDEX: indexName.optional(),
    ACTIVE_JOBS_INDEX: indexName.optional(),
  });
  return new DynamoJobStore({
    client: documentClient,
    jobsTable: env.JOBS_TABLE,
    contentsTable: env.JOB_CONTENTS_TABLE,
    byApiKeyIndex: env.JOBS_BY_API_KEY_INDEX,
    activeIndex: env.ACTIVE_JOBS_INDEX,
  });
}

export function deliveriesFromEnv() {
  const env = readEnv({ JOBS_TABLE: tableName, DELIVERIES_TABLE: tableName });
  return new DynamoDeliveries({
    client: documentClient,
    jobsTable: env.JOBS_TABLE,
    deliveriesTable: env.DELIVERIES_TABLE,
  });
}

export function emailQueueFromEnv() {
  const env = readEnv({ EMAIL_QUEUE_URL: z.url() });
  return new SqsEmailQueue(sqsClient, env.EMAIL_QUEUE_URL);
}

export function transportFromEnv() {
  const names = Object.keys(TRANSPORTS) as [TransportName, ...TransportName[]];
  const env = readEnv({ EMAIL_TRANSPORT: z.enum(names).default('record') });
  return TRANSPORTS[env.EMAIL_TRANSPORT]();
}
