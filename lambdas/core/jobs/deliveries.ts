import type { FeedbackKind, SesFeedbackKind } from './feedback-kinds';
import { MAX_CC } from './job';

/**
 * A delivery item goes through `sending` (claimed by one consumer, under a lease) to `sent`,
 * `failed`, `suppressed` (not sent: the address is on the suppression list) or `cancelled` (not
 * sent: the job was cancelled first), its outcome, which the table's stream counts on the job. See
 * `DeliveryClaims`. A retry of the job's failures takes a `failed` one back to `queued`: no outcome,
 * claimable again.
 */
export type DeliveryStatus = 'sending' | 'sent' | 'failed' | 'suppressed' | 'cancelled' | 'queued';
export type OutcomeStatus = Exclude<DeliveryStatus, 'sending' | 'queued'>;
/** Every outcome, in the order counts name them. */
export const OUTCOME_STATUSES = [
  'sent',
  'failed',
  'suppressed',
  'cancelled',
] as const satisfies readonly OutcomeStatus[];

const OUTCOMES: ReadonlySet<string> = new Set(OUTCOME_STATUSES);
/** Whether a delivery item holds its recipient's outcome (not a claim, a requeued failure, or copies only). */
export const hasOutcome = (record: Pick<DeliveryRecord, 'status'> | undefined): boolean =>
  record?.status !== undefined && OUTCOMES.has(record.status);

/**
 * A job's deliveries are spread over several partition keys once it is large enough to be sent
 * fast: one key takes about 1,000 writes a second, an outcome is one, so one job of many thousand
 * recipients at SES's higher rates would meet that ceiling. A job's recipients are spread by a
 * hash of the address over `shards` keys, `<job id>#<n>`; a job of one shard keeps the job id itself
 * (as every job did before shards). The count is fixed when the job is accepted and kept with its
 * content, so every reader and writer of its deliveries finds the same keys.
 */
export const RECIPIENTS_PER_DELIVERY_SHARD = 500;
export const MAX_DELIVERY_SHARDS = 10;

/** How many partition keys a job of this many recipients spreads its deliveries over. */
export const deliveryShards = (recipients: number) =>
  Math.min(MAX_DELIVERY_SHARDS, Math.max(1, Math.ceil(recipients / RECIPIENTS_PER_DELIVERY_SHARD)));

/**
 * The partition key of a recipient's delivery item: FNV-1a over the address's UTF-16 code units,
 * then murmur3's finalizer (FNV's low bits alone follow the characters' low bits, so a few shards
 * would be picked by little more than their parity). Part of what is stored: a job's items are found
 * under these keys, so the hash never changes for jobs that exist.
 */
export function deliveryPartition(jobId: string, recipient: string, shards: number): string {
  if (shards <= 1) return jobId;
  let hash = 0x811c9dc5;
  for (let index = 0; index < recipient.length; index++) {
    hash ^= recipient.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return `${jobId}#${(hash >>> 0) % shards}`;
}

/** Every partition key a job's deliveries may be under. */
export const deliveryPartitions = (jobId: string, shards: number): string[] =>
  shards <= 1 ? [jobId] : Array.from({ length: shards }, (_, shard) => `${jobId}#${shard}`);

/** The job a delivery table key belongs to (a shard's, a chunk claim's, or the job id itself). */
export const jobOfDeliveryPartition = (partition: string) => partition.split('#')[0] ?? partition;

/** Why a recipient failed, in classes few enough to count. */
export type FailureReason = 'nonprofitDeleted' | 'rejected' | 'tooLarge' | 'deadLetter';
/** The failures a second try may get past: a message that exhausted its receives, a transport's refusal. */
export const RETRYABLE_FAILURES: ReadonlySet<FailureReason> = new Set(['deadLetter', 'rejected']);

/** What became of one recipient of a job, recorded under the claim that decided it. */
export interface DeliveryOutcome {
  recipient: string;
  status: OutcomeStatus;
  cc: string[];
  error?: string;
  /** Why it failed, for a `failed` outcome: whether a retry may help. */
  reason?: FailureReason | undefined;
  /** The transport's id of the sent message (SES's MessageId), when it gives one. */
  messageId?: string | null;
  /** Why a cc address's copy was refused, by address (the recipient's own email was sent). */
  copyErrors?: Record<string, string> | undefined;
  /** The snapshot of the values the email was rendered from (see `RenderedEmailStore`), when one was kept. */
  snapshot?: string | undefined;
  /** For a `cancelled` one: the cc copies an earlier attempt sent (not stored; the quota refund leaves them out). */
  copiesSent?: number | undefined;
  /** How many times the message was received, this time included. */
  attempts: number;
  /** The claim this outcome is recorded under: only its holder records the recipient. */
  claimToken: string;
  /**
   * Set when the recipient came in a chunk (see `ChunkClaims`): the outcome is written only if the
   * recipient has none, and `claimToken` is the chunk's.
   */
  chunk?: number | undefined;
}

/** A delivery item as stored. */
export interface DeliveryRecord {
  job_id: string;
  recipient: string;
  /** Absent while a chunk's consumer has written only the cc copies' ids (see `ChunkClaims`). */
  status?: DeliveryStatus;
  cc?: string[];
  error?: string;
  /** Why it failed (absent on failures recorded before reasons were kept). */
  failure_reason?: FailureReason;
  message_id?: string;
  /** When the transport accepted the email (recorded with its message id, before the outcome). */
  handed_over_at?: string;
  /** Each cc copy's message id, by address, written as the transport took it (see `DeliveryClaims`). */
  copy_ids?: Record<string, string>;
  /** Why a cc copy was refused, by address. */
  copy_errors?: Record<string, string>;
  /** The snapshot the email is rendered again from when read (see `RenderedEmailStore`). */
  snapshot?: string;
  attempts?: number;
  processed_at?: string;
  /** What SES reported of the sent email afterwards (bounces, complaints), oldest first. */
  feedback?: DeliveryFeedback[];
}

/** One SES report on a sent email, as its delivery record keeps it. */
export interface DeliveryFeedback {
  type: FeedbackKind;
  at: string;
  detail: string;
}

export interface RecordResult {
  /** The outcomes this call recorded (the others were recorded before, or under another claim). */
  recorded: DeliveryOutcome[];
  /** Outcomes for recipients recorded already (a redelivered message): they change nothing. */
  duplicates: number;
  /** Outcomes whose write failed (the store refused or did not answer), with the first error: not recorded. */
  failed: DeliveryOutcome[];
  error?: unknown;
}

/**
 * Records outcomes, each exactly once whatever SQS redelivers: one conditional write per delivery,
 * only under the claim that decided it. The job's counters, and its end, follow from these writes
 * through the deliveries table's stream (see `OutcomeCounts`): an outcome recorded is an outcome
 * counted, once, a few seconds later.
 */
export interface ProgressRecorder {
  record(jobId: string, outcomes: readonly DeliveryOutcome[]): Promise<RecordResult>;
}

/**
 * What a claim found:
 * - `claimed`: this consumer holds the recipient until the lease ends; it may send. `copies` holds
 *   the cc copies an earlier attempt handed over (address to message id): they are not sent again.
 * - `handedOver`: an earlier attempt's email was taken by the transport (its message id is kept);
 *   this consumer now holds the claim, and records the recipient sent without sending again.
 * - `held`: another consumer holds a live lease (until `leaseUntil`, ms since the epoch); try after it.
 * - `done`: the recipient has its outcome.
 */
export type Claim =
  | { state: 'claimed'; token: string; copies: Readonly<Record<string, string>> }
  | { state: 'handedOver'; token: string; messageId: string; snapshot?: string | undefined }
  | { state: 'held'; leaseUntil: number }
  | { state: 'done' };

/**
 * Each recipient of a job is sent at most once, whatever SQS does: a consumer claims a recipient
 * (a conditional write with a lease longer than the consumer's timeout) before sending, and as soon
 * as the transport took the email writes its outcome, `sent` with the transport's message id, in
 * one conditional write under the claim. A duplicate message finds the claim held or done. Only a
 * consumer that dies between the transport taking the email and that write leaves a claim that,
 * once its lease ends, is claimed and sent again.
 *
 * A recipient with cc addresses is several emails, one per reader (each with its own unsubscribe
 * link): the copies go first, each copy's message id written on the claim as it is taken, and the
 * recipient's own email last. So a claim taken over after its lease ended says which copies left
 * (`copies`). A claim whose recipient's own message id is on it but no outcome (`handedOver`) was
 * left by the version before this one, which wrote the id and the outcome apart: it is recorded
 * sent, never sent again.
 */
export interface DeliveryClaims {
  claim(
    jobId: string,
    recipients: readonly { recipient: string; attempts: number }[],
  ): Promise<Map<string, Claim>>;
  /**
   * Writes the transport's message id on the claim, so no later attempt sends that email again: with
   * `copyTo`, the copy to that cc address (the consumer's use); without, the recipient's own (with
   * its snapshot), as the version before this one did. Throws `ClaimLostError` when the claim is no
   * longer the caller's.
   */
  handOver(
    jobId: string,
    recipient: string,
    token: string,
    messageId: string,
    details?: { copyTo?: string | undefined; snapshot?: string | undefined },
  ): Promise<void>;
  /**
   * Gives a claim back when the transport certainly did not take the email (throttled, paused): the
   * recipient may be claimed again at once, and the copies handed over stay written.
   */
  release(jobId: string, recipient: string, token: string): Promise<void>;
}

/**
 * What claiming a chunk found:
 * - `claimed`: this consumer holds the chunk until the lease ends. `found` is undefined when the
 *   chunk was never claimed before (none of its recipients can have an item); otherwise it holds the
 *   delivery items its recipients have, read strongly consistent after the claim.
 * - `held`: another consumer holds a live lease (until `leaseUntil`, ms since the epoch).
 */
export type ChunkClaim =
  | { state: 'claimed'; token: string; found: Map<string, DeliveryRecord> | undefined }
  | { state: 'held'; leaseUntil: number };

/**
 * A job's recipients travel ten to a message (a chunk, numbered in the job), and a consumer claims
 * the chunk, not each recipient: one conditional write with a lease longer than its timeout, where
 * a claim per recipient was ten. Each recipient's outcome is then one conditional write that
 * succeeds only if the recipient has none, so nothing is counted twice.
 *
 * The first claim of a chunk finds no item to read: nobody sent any of it. A claim that takes a
 * chunk over (its lease lapsed: the holder died, or gave it back to wait) reads its recipients'
 * items first, and sends only those with no outcome, skipping the cc copies already written
 * (`recordCopies`). So, as with a claim per recipient, only a consumer that dies between the
 * transport taking an email and its outcome's write leaves an email that is sent again.
 *
 * Recipients a retry queued again (`queued`) or claimed on their own (`sending`) belong to their
 * own messages (`DeliveryClaims`): a chunk leaves them alone.
 */
export interface ChunkClaims {
  claimChunk(jobId: string, chunk: number, recipients: readonly string[]): Promise<ChunkClaim>;
  /** Ends the lease now (the chunk's emails wait in the queue): its next message takes it over at once. */
  releaseChunk(jobId: string, chunk: number, token: string): Promise<void>;
  /**
   * Writes the ids of a chunk recipient's cc copies sent so far (address to message id), so a
   * takeover does not send them again. Throws `ClaimLostError` when the recipient has its outcome.
   */
  recordCopies(jobId: string, recipient: string, copies: Readonly<Record<string, string>>): Promise<void>;
}

export interface DeliveryReader {
  /** The delivery items among these recipients of a job (claims under way included). */
  getMany(jobId: string, recipients: readonly string[]): Promise<Map<string, DeliveryRecord>>;
  /** Every recipient of a job that has an outcome. */
  processedRecipients(jobId: string): Promise<Set<string>>;
  /** Every delivery item of a job, by recipient: its status (undefined while only cc copies are written). */
  recipientStates(jobId: string): Promise<Map<string, DeliveryStatus | undefined>>;
  /** The job's recipients recorded `failed`, with why. */
  failures(jobId: string): Promise<DeliveryRecord[]>;
}

/** What a retry asks of the ledger: these failed recipients back to `queued`, counted back into `remaining`. */
export interface RetryRequest {
  recipients: readonly string[];
  /** Marks the job as this retry's while its chunks are written. */
  token: string;
  idempotencyKey?: string | undefined;
  /** When the retry's enqueue has ended at the latest (the handler's deadline), for the sweeper. */
  deadline: Date;
}

/**
 * - `requeued`: these recipients are `queued` again and counted in `remaining` (those that stopped
 *   being `failed` meanwhile are left out); the job runs again.
 * - `replayed`: a retry under the same Idempotency-Key was made before.
 * - `refused`: the job is not `completed` any more (another retry, or it is gone): `status` says what it is.
 */
export type RetryWritten =
  | { state: 'requeued'; recipients: string[] }
  | { state: 'replayed' }
  | { state: 'refused'; status: string | undefined };

/** Puts failed recipients of an ended job back in its way, so a retry sends them again. */
export interface FailureRequeue {
  requeueFailures(jobId: string, retry: RetryRequest): Promise<RetryWritten>;
}

/**
 * SES's reports on emails it took. Each report is noted on the recipient's delivery record and
 * counted on its job in one transaction, at most once per report (SES's feedback id), and only on
 * the delivery whose email SES names (its message id): a report about another email, or a cc copy,
 * matches no delivery.
 */
export interface FeedbackLedger {
  recordFeedback(jobId: string, recipient: string, report: FeedbackReport): Promise<FeedbackNoted>;
}

/** A report on an email: SES's (about the email with its message id), or an unsubscribe by its link. */
export type FeedbackReport = SesReport | UnsubscribeReport;

export interface UnsubscribeReport {
  kind: 'unsubscribe';
  /** One per reader: a reader's unsubscribe is noted once however often the link is used. */
  feedbackId: string;
  /**
   * Whether the job counts it (`unsubscribed`): only the click that suppressed the reader, so a
   * reader who uses the links of several copies is counted once.
   */
  countOnJob: boolean;
  detail: string;
  at: string;
}

export interface SesReport {
  kind: SesFeedbackKind;
  /** Its id: the report is noted once per delivery however often it is handed over. */
  feedbackId: string;
  messageId: string;
  detail: string;
  at: string;
}

/**
 * - `recorded`: noted on the delivery and counted on the job, now.
 * - `duplicate`: this report was noted before (a redelivered message).
 * - `pending`: the recipient is claimed and SES's message id is not written on it yet: read the report again later.
 * - `unmatched`: no delivery of this job has that email (a cc copy, another message), the job is
 *   gone, or the delivery holds `MAX_FEEDBACK_PER_DELIVERY` reports already.
 */
export type FeedbackNoted = 'recorded' | 'duplicate' | 'pending' | 'unmatched';

/**
 * Reports kept per delivery at most: a handful of SES's in practice, and one unsubscribe per reader
 * (the recipient and each cc), so readers who unsubscribe never crowd out a bounce or complaint. The
 * cap keeps the item far from DynamoDB's 400 KB.
 */
export const MAX_FEEDBACK_PER_DELIVERY = 20 + MAX_CC + 1;

export class JobGoneError extends Error {
  constructor(jobId: string) {
    super(`Job ${jobId} does not exist`);
    this.name = 'JobGoneError';
  }
}

/**
 * The claim is no longer the caller's: its lease lapsed and another consumer took the recipient,
 * or the outcome was recorded. Stores throw it where the port says so (`handOver`); no retry helps.
 */
export class ClaimLostError extends Error {
  constructor(jobId: string, recipient: string) {
    super(`The claim on ${recipient} of job ${jobId} is no longer held`);
    this.name = 'ClaimLostError';
  }
}
