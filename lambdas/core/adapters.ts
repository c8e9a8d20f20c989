import { DynamoAuditReader, DynamoAuditTrail } from './audit/dynamodb/dynamo-audit-trail';
import { documentClient, secretsManagerClient, sesClient, sesSendClient, sqsClient } from './aws-clients';
import { bound, QUEUE, TABLE } from './bindings';
import { EventOutbox } from './events/dynamodb/outbox';
import { DEFAULT_WAITS } from './jobs/consumer/pacing';
import { DynamoDeliveries } from './jobs/dynamodb/dynamo-deliveries';
import { DynamoJobContents } from './jobs/dynamodb/dynamo-job-contents';
import { DynamoJobStore } from './jobs/dynamodb/dynamo-job-store';
import { DynamoLedgerSearch } from './jobs/dynamodb/dynamo-ledger-search';
import { DynamoOutcomeCounts } from './jobs/dynamodb/dynamo-outcome-counts';
import { DynamoRenderedEmails } from './jobs/dynamodb/dynamo-rendered-emails';
import { DynamoNonprofitRepository } from './nonprofits/dynamodb/dynamo-nonprofit-repository';
import type { AddressKeys } from './people/address-keys';
import { SecretsManagerAddressKeys } from './people/address-keys';
import { DynamoEraser } from './people/dynamodb/dynamo-eraser';
import { DynamoPersonRequests } from './people/dynamodb/dynamo-person-requests';
import { SqsPersonRequestQueue } from './people/sqs-person-request-queue';
import { SqsEmailQueue } from './queue/email-queue';
import { SqsQueueGauge } from './queue/queue-depth';
import { DynamoRecipientQuota } from './quota/dynamodb/dynamo-recipient-quota';
import { DynamoGuardStore, DynamoReputationWindow } from './sending/dynamodb/dynamo-reputation';
import type { SendingControlsDependencies } from './sending/sending-controls';
import { SesSending } from './sending/ses-sending';
import { readSettings, SETTING } from './settings';
import { DynamoSuppressionList } from './suppressions/dynamodb/dynamo-suppression-list';
import {
  SEALING_SECRET_MAX_AGE_SECONDS,
  SecretsManagerSigningSecret,
  type SigningSecretOptions,
} from './suppressions/signing-secret';
import { SendPacer } from './transport/send-pacer';
import { SesTransport } from './transport/ses-transport';
import { type EmailTransport, RecordTransport } from './transport/transport';

/**
 * The production adapters, each built from the bindings the stack gives a function (see
 * bindings.ts). A handler builds only what it uses, at cold start, and every binding an adapter
 * needs is required: a function the stack did not bind fails there, naming the variable.
 */

/** Where a function that changes the registry, the suppression list or the sender records it (core/audit). */
export function auditTrailFromEnv() {
  const { retentionDays } = readSettings({ retentionDays: SETTING.auditRetentionDays });
  return new DynamoAuditTrail({ client: documentClient, tableName: bound(TABLE.audit), retentionDays });
}

/** The audit trail as `GET /audit` reads it. */
export const auditReaderFromEnv = () =>
  new DynamoAuditReader({ client: documentClient, tableName: bound(TABLE.audit) });

/** The registry; a function that changes it is given the audit trail its changes are recorded in. */
export const nonprofitsFromEnv = (audit?: DynamoAuditTrail) =>
  new DynamoNonprofitRepository({ client: documentClient, tableName: bound(TABLE.nonprofits), audit });

/**
 * Where a function that writes a fact tells it (core/events): given to the adapters of the
 * functions that write them, so only those are bound to the outbox.
 */
export const eventOutboxFromEnv = () => new EventOutbox(bound(TABLE.outbox));

/** The suppression list; a function that lets an address in, or lifts an erased one, is given the address key. */
export const suppressionsFromEnv = (outbox?: EventOutbox, audit?: DynamoAuditTrail, keys?: AddressKeys) =>
  new DynamoSuppressionList({
    client: documentClient,
    tableName: bound(TABLE.suppressions),
    outbox,
    audit,
    keys,
  });

/** The secret erased addresses' keys are made with. */
export const addressKeysFromEnv = () =>
  new SecretsManagerAddressKeys(readSettings({ arn: SETTING.addressKeySecretArn }).arn, secretsManagerClient);

/** The secret that seals and opens unsubscribe links. */
export const signingSecretFromEnv = (options: SigningSecretOptions = {}) =>
  new SecretsManagerSigningSecret(
    readSettings({ arn: SETTING.unsubscribeSecretArn }).arn,
    secretsManagerClient,
    options,
  );

/** What the consumer needs to give each email its unsubscribe link. */
export function unsubscribeLinksFromEnv() {
  const { url, mailto } = readSettings({ url: SETTING.unsubscribeUrl, mailto: SETTING.unsubscribeMailto });
  // Read each minute, not each five: after a rotation, links sealed with the version it made
  // previous go out for at most a minute (and so live a minute less than a full period).
  return { secret: signingSecretFromEnv({ maxAgeSeconds: SEALING_SECRET_MAX_AGE_SECONDS }), url, mailto };
}

/** The jobs; the function that creates them (acceptance) is given their retention (`jobRetentionDays`). */
export const jobsFromEnv = (outbox?: EventOutbox) =>
  new DynamoJobStore({
    client: documentClient,
    tableName: bound(TABLE.jobs),
    outbox,
    retentionDays: readSettings({ days: SETTING.jobRetentionDays }).days,
  });

/** The jobs' contents; the function that writes them (acceptance) is given their retention (`ledgerRetentionDays`). */
export const jobContentsFromEnv = () =>
  new DynamoJobContents({
    client: documentClient,
    tableName: bound(TABLE.jobContents),
    retentionDays: readSettings({ days: SETTING.ledgerRetentionDays }).days,
  });

/** Jobs whose shard count an environment keeps: it never changes, so it is read once per job. */
const MAX_REMEMBERED_SHARD_COUNTS = 1_000;

/**
 * The ledger of deliveries; a consumer also claims recipients, under the lease the stack sets. A
 * job's shard count comes from its content (part 0 of the job contents table), read once.
 */
export function deliveriesFromEnv(outbox?: EventOutbox) {
  const { leaseSeconds } = readSettings({ leaseSeconds: SETTING.claimLeaseSeconds });
  const contents = jobContentsFromEnv();
  const shardCounts = new Map<string, Promise<number>>();
  const shardsOf = (jobId: string) => {
    const known = shardCounts.get(jobId);
    if (known) return known;
    const count = contents.content(jobId).then((content) => content?.delivery_shards ?? 1);
    // A failed read is not kept: the next call asks again.
    count.catch(() => shardCounts.delete(jobId));
    if (shardCounts.size >= MAX_REMEMBERED_SHARD_COUNTS)
      shardCounts.delete(shardCounts.keys().next().value as string);
    shardCounts.set(jobId, count);
    return count;
  };
  return new DynamoDeliveries({
    client: documentClient,
    jobsTable: bound(TABLE.jobs),
    deliveriesTable: bound(TABLE.deliveries),
    outbox,
    shardsOf,
    // Set for the functions that write deliveries (the consumers): each item expires then.
    retentionDays: readSettings({ days: SETTING.ledgerRetentionDays }).days,
    ...(leaseSeconds === undefined ? {} : { leaseMs: leaseSeconds * 1000 }),
  });
}

/** The jobs' counters, as the deliveries table's stream adds outcomes to them. */
export function outcomeCountsFromEnv() {
  return new DynamoOutcomeCounts({
    client: documentClient,
    jobsTable: bound(TABLE.jobs),
    outbox: eventOutboxFromEnv(),
  });
}

/** The stored rendered emails, or undefined when the deployment does not store them. */
export function renderedEmailsFromEnv() {
  const { store, retentionDays } = readSettings({
    store: SETTING.storeRenderedEmails,
    retentionDays: SETTING.renderedEmailRetentionDays,
  });
  if (!store) return undefined;
  return new DynamoRenderedEmails({
    client: documentClient,
    tableName: bound(TABLE.renderedEmails),
    ...(retentionDays === undefined ? {} : { retentionDays }),
  });
}

/** Each API key's recipients per UTC day, with the limit the stack set. */
export function recipientQuotaFromEnv() {
  const { limit } = readSettings({ limit: SETTING.recipientQuotaPerDay });
  return new DynamoRecipientQuota({ client: documentClient, tableName: bound(TABLE.usage), limit });
}

export const emailQueueFromEnv = () => new SqsEmailQueue(sqsClient, bound(QUEUE.emails));

/** The depth of the email queue and of its dead-letter queue. */
export const queueGaugesFromEnv = () => ({
  emails: new SqsQueueGauge(sqsClient, bound(QUEUE.emails)),
  deadLetters: new SqsQueueGauge(sqsClient, bound(QUEUE.deadLetters)),
});

/** The transport the stack chose (`EMAIL_TRANSPORT`), with SES's sender settings when it is SES. */
export function transportFromEnv(): EmailTransport {
  const env = readSettings({
    transport: SETTING.emailTransport,
    fromAddress: SETTING.sesFromAddress,
    replyTo: SETTING.sesReplyTo,
    configurationSet: SETTING.sesConfigurationSet,
  });
  if (env.transport === 'record') return new RecordTransport();
  if (!env.fromAddress)
    throw new Error(
      `Invalid environment: ${SETTING.sesFromAddress.variable} is required with ${SETTING.emailTransport.variable}=ses`,
    );
  return new SesTransport({
    client: sesSendClient,
    fromAddress: env.fromAddress,
    replyTo: env.replyTo,
    configurationSet: env.configurationSet,
  });
}

/** How emails are rendered and sized: the consumer's, and the send and preview routes' checks. */
export const RENDER_SETTINGS = {
  maxRenderedBytes: SETTING.maxRenderedEmailBytes,
  defaultSubject: SETTING.defaultSubject,
  senderName: SETTING.senderName,
  senderPostalAddress: SETTING.senderPostalAddress,
} as const;

/** This environment's share of the send rate, when the stack sets one (SES), and how emails are rendered. */
export function sendSettingsFromEnv() {
  const { rate, pausedSeconds, ...settings } = readSettings({
    rate: SETTING.sendRatePerEnvironment,
    pausedSeconds: SETTING.sendingPausedWaitSeconds,
    ...RENDER_SETTINGS,
  });
  return {
    pacer: rate === undefined ? undefined : new SendPacer(rate),
    settings,
    ...(pausedSeconds === undefined ? {} : { waits: { ...DEFAULT_WAITS, pausedSeconds } }),
  };
}

/**
 * The reputation guard's parts: the window and the record in the jobs table, the thresholds the
 * stack set, and, with the SES transport, the configuration set's switch and SES's state.
 */
export function sendingControlsFromEnv(
  outbox?: EventOutbox,
  audit?: DynamoAuditTrail,
): SendingControlsDependencies {
  const settings = readSettings({
    transport: SETTING.emailTransport,
    configurationSet: SETTING.sesConfigurationSet,
    windowHours: SETTING.reputationWindowHours,
    minVolume: SETTING.reputationMinVolume,
    bounceRate: SETTING.pauseBounceRate,
    complaintRate: SETTING.pauseComplaintRate,
  });
  const jobsTable = bound(TABLE.jobs);
  const ses = settings.transport === 'ses' ? new SesSending(sesClient, settings.configurationSet) : undefined;
  return {
    // Read strongly consistent: the guard must see the bounce it was woken by.
    window: new DynamoReputationWindow({ client: documentClient, jobsTable, consistent: true }),
    store: new DynamoGuardStore({ client: documentClient, jobsTable, outbox, audit }),
    thresholds: {
      windowHours: settings.windowHours,
      minVolume: settings.minVolume,
      bounceRate: settings.bounceRate,
      complaintRate: settings.complaintRate,
    },
    ...(ses ? { switch: ses, sending: ses } : {}),
  };
}

/**
 * A person's requests (core/people): the table of requests and findings; a function that accepts
 * or completes an erasure also writes the suppression list, the registry and the audit trail.
 */
export const personRequestsFromEnv = (erasure?: { audit: DynamoAuditTrail }) =>
  new DynamoPersonRequests({
    client: documentClient,
    tableName: bound(TABLE.personRequests),
    erasure: erasure && {
      suppressionsTable: bound(TABLE.suppressions),
      nonprofitsTable: bound(TABLE.nonprofits),
      audit: erasure.audit,
    },
  });

/** The tables an erasure walks: those the stack bound (the rendered emails' only where they are kept). */
export function eraserFromEnv() {
  const { storeRendered } = readSettings({ storeRendered: SETTING.storeRenderedEmails });
  return new DynamoEraser({
    client: documentClient,
    tables: {
      deliveries: bound(TABLE.deliveries),
      job_contents: bound(TABLE.jobContents),
      ...(storeRendered ? { rendered_emails: bound(TABLE.renderedEmails) } : {}),
      audit: bound(TABLE.audit),
      outbox: bound(TABLE.outbox),
      person_requests: bound(TABLE.personRequests),
      suppressions: bound(TABLE.suppressions),
    },
    contents: new DynamoJobContents({ client: documentClient, tableName: bound(TABLE.jobContents) }),
  });
}

/** The queue of person requests' steps. */
export const personRequestQueueFromEnv = () =>
  new SqsPersonRequestQueue(sqsClient, bound(QUEUE.personRequests));

/** The ledger as an export walks it: the deliveries table, each job's subject from its content. */
export const ledgerSearchFromEnv = () =>
  new DynamoLedgerSearch({
    client: documentClient,
    deliveriesTable: bound(TABLE.deliveries),
    contents: new DynamoJobContents({ client: documentClient, tableName: bound(TABLE.jobContents) }),
  });
