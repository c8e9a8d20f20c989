import { z } from 'zod';
import { documentClient, secretsManagerClient, sesSendClient, sqsClient } from './aws-clients';
import { bound, QUEUE, TABLE } from './bindings';
import { readEnv } from './env';
import { DynamoDeliveries } from './jobs/deliveries';
import { DynamoJobContents } from './jobs/dynamodb/dynamo-job-contents';
import { DynamoJobStore } from './jobs/dynamodb/dynamo-job-store';
import { DynamoRenderedEmails } from './jobs/rendered-emails';
import { DynamoNonprofitRepository } from './nonprofits/repository';
import { SqsEmailQueue } from './queue/email-queue';
import { SqsQueueGauge } from './queue/queue-depth';
import { DynamoRecipientQuota } from './quota/recipient-quota';
import { DynamoSuppressionList } from './suppressions/repository';
import { SecretsManagerSigningSecret } from './suppressions/signing-secret';
import { SendPacer } from './transport/send-pacer';
import { SesTransport } from './transport/ses-transport';
import { type EmailTransport, RecordTransport } from './transport/transport';

/**
 * The production adapters, each built from the bindings the stack gives a function (see
 * bindings.ts). A handler builds only what it uses, at cold start, and every binding an adapter
 * needs is required: a function the stack did not bind fails there, naming the variable.
 */

export const nonprofitsFromEnv = () =>
  new DynamoNonprofitRepository({ client: documentClient, tableName: bound(TABLE.nonprofits) });

export const suppressionsFromEnv = () =>
  new DynamoSuppressionList({ client: documentClient, tableName: bound(TABLE.suppressions) });

/** The secret that signs and checks unsubscribe links. */
export const signingSecretFromEnv = () =>
  new SecretsManagerSigningSecret(
    readEnv({ UNSUBSCRIBE_SECRET_ARN: z.string().min(1) }).UNSUBSCRIBE_SECRET_ARN,
    secretsManagerClient,
  );

/** What the consumer needs to give each email its unsubscribe link. */
export function unsubscribeLinksFromEnv() {
  const env = readEnv({
    UNSUBSCRIBE_URL: z.url({ protocol: /^https?$/ }),
    UNSUBSCRIBE_MAILTO: z.email().optional(),
  });
  return { secret: signingSecretFromEnv(), url: env.UNSUBSCRIBE_URL, mailto: env.UNSUBSCRIBE_MAILTO };
}

export const jobsFromEnv = () => new DynamoJobStore({ client: documentClient, tableName: bound(TABLE.jobs) });

export const jobContentsFromEnv = () =>
  new DynamoJobContents({ client: documentClient, tableName: bound(TABLE.jobContents) });

/** The ledger of deliveries; a consumer also claims recipients, under the lease the stack sets. */
export function deliveriesFromEnv() {
  const env = readEnv({ CLAIM_LEASE_SECONDS: z.coerce.number().int().positive().optional() });
  return new DynamoDeliveries({
    client: documentClient,
    jobsTable: bound(TABLE.jobs),
    deliveriesTable: bound(TABLE.deliveries),
    ...(env.CLAIM_LEASE_SECONDS === undefined ? {} : { leaseMs: env.CLAIM_LEASE_SECONDS * 1000 }),
  });
}

/** The stored rendered emails, or undefined when the deployment does not store them. */
export function renderedEmailsFromEnv() {
  const env = readEnv({
    STORE_RENDERED_EMAILS: z.enum(['true', 'false']),
    RENDERED_EMAIL_RETENTION_DAYS: z.coerce.number().int().positive().optional(),
  });
  if (env.STORE_RENDERED_EMAILS === 'false') return undefined;
  return new DynamoRenderedEmails({
    client: documentClient,
    tableName: bound(TABLE.renderedEmails),
    ...(env.RENDERED_EMAIL_RETENTION_DAYS === undefined
      ? {}
      : { retentionDays: env.RENDERED_EMAIL_RETENTION_DAYS }),
  });
}

/** Each API key's recipients per UTC day, with the limit the stack set. */
export function recipientQuotaFromEnv() {
  const env = readEnv({ RECIPIENT_QUOTA_PER_DAY: z.coerce.number().int().positive() });
  return new DynamoRecipientQuota({
    client: documentClient,
    tableName: bound(TABLE.usage),
    limit: env.RECIPIENT_QUOTA_PER_DAY,
  });
}

export const emailQueueFromEnv = () => new SqsEmailQueue(sqsClient, bound(QUEUE.emails));

/** The depth of the email queue and of its dead-letter queue. */
export const queueGaugesFromEnv = () => ({
  emails: new SqsQueueGauge(sqsClient, bound(QUEUE.emails)),
  deadLetters: new SqsQueueGauge(sqsClient, bound(QUEUE.deadLetters)),
});

/** The transport the stack chose (`EMAIL_TRANSPORT`), with SES's sender settings when it is SES. */
export function transportFromEnv(): EmailTransport {
  const env = readEnv({
    EMAIL_TRANSPORT: z.enum(['ses', 'record']),
    SES_FROM_ADDRESS: z.email().optional(),
    SES_REPLY_TO: z.email().optional(),
    SES_CONFIGURATION_SET: z.string().min(1).optional(),
  });
  if (env.EMAIL_TRANSPORT === 'record') return new RecordTransport();
  if (!env.SES_FROM_ADDRESS)
    throw new Error('Invalid environment: SES_FROM_ADDRESS is required with EMAIL_TRANSPORT=ses');
  return new SesTransport({
    client: sesSendClient,
    fromAddress: env.SES_FROM_ADDRESS,
    replyTo: env.SES_REPLY_TO,
    configurationSet: env.SES_CONFIGURATION_SET,
  });
}

/** This environment's share of the send rate, when the stack sets one (SES), and how emails are rendered. */
export function sendSettingsFromEnv() {
  const env = readEnv({
    SEND_RATE_PER_ENVIRONMENT: z.coerce.number().positive().optional(),
    MAX_RENDERED_EMAIL_BYTES: z.coerce.number().int().positive(),
    DEFAULT_SUBJECT: z.string().min(1),
  });
  return {
    pacer:
      env.SEND_RATE_PER_ENVIRONMENT === undefined ? undefined : new SendPacer(env.SEND_RATE_PER_ENVIRONMENT),
    settings: { maxRenderedBytes: env.MAX_RENDERED_EMAIL_BYTES, defaultSubject: env.DEFAULT_SUBJECT },
  };
}
