import { randomUUID } from 'node:crypto';
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  type QueryCommandInput,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { backoff, chunks, mapConcurrently } from '../../concurrency';
import { batchGetAll, queryAll } from '../../dynamo-paging';
import type { EventOutbox } from '../../events/dynamodb/outbox';
import { emailFeedback } from '../../events/events';
import { reputationAdded } from '../../sending/dynamodb/dynamo-reputation';
import { expiresAfter } from '../../ttl';
import {
  type ChunkClaim,
  type ChunkClaims,
  type Claim,
  ClaimLostError,
  type DeliveryClaims,
  type DeliveryFeedback,
  type DeliveryOutcome,
  type DeliveryReader,
  type DeliveryRecord,
  type DeliveryStatus,
  deliveryPartition,
  deliveryPartitions,
  type FailureRequeue,
  type FeedbackLedger,
  type FeedbackNoted,
  type FeedbackReport,
  hasOutcome,
  MAX_FEEDBACK_PER_DELIVERY,
  type ProgressRecorder,
  type RecordResult,
  type RetryRequest,
  type RetryWritten,
} from '../deliveries';
import { FEEDBACK_COUNTERS, failuresRequeued, feedbackRecorded } from '../job-status';
import { STREAM_COUNTED } from '../outcome-counts';
import { type RawItem, rawNumber, rawString } from './raw-item';

/** The DynamoDB adapter of the delivery ports (`../deliveries.ts`): the deliveries table, with the job's counters where a retry or a report changes them. */
/** A transaction holds at most 100 actions: 99 deliveries and the job. */
const DELIVERIES_PER_TRANSACTION = 99;
const MAX_TRANSACTION_ATTEMPTS = 12;

export interface DynamoDeliveriesOptions {
  client: DynamoDBDocumentClient;
  jobsTable: string;
  deliveriesTable: string;
  /** Where SES's reports on sent emails are told (`Email Bounced`, `Email Complained`): the feedback consumer's. */
  outbox?: EventOutbox | undefined;
  /**
   * How long a claim is held: longer than a consumer can run (its timeout), so a live consumer's
   * claim is never taken over. Only consumers claim; readers need not set it.
   */
  leaseMs?: number;
  /**
   * How many partition keys a job's deliveries are spread over (its content's `delivery_shards`);
   * unset, one: the job id.
   */
  shardsOf?: (jobId: string) => Promise<number>;
  /**
   * Days a delivery item is kept (the stack's `ledgerRetentionDays`): each write that may create one
   * sets its `expires_at` if it has none, and DynamoDB's TTL removes it then. Only writers set it.
   */
  retentionDays?: number | undefined;
  now?: () => Date;
}

/**
 * Chunk claims live in the deliveries table beside the job's deliveries, under a partition of their
 * own (`<job id>#chunks`, sort key the chunk's number): a query of the job's deliveries never meets
 * them, and the stream's counter finds no outcome in them.
 */
export const CHUNK_CLAIMS_SUFFIX = '#chunks';

/** A delivery item as read, named by its job (not the shard's partition key it is stored under). */
const asRecord = (jobId: string, item: Record<string, unknown>) =>
  ({ ...item, job_id: jobId }) as unknown as DeliveryRecord;

/** Claims, or outcomes, written at once per batch: each is a single small conditional write. */
const CONCURRENT_WRITES = 10;

export class DynamoDeliveries
  implements ProgressRecorder, DeliveryClaims, ChunkClaims, DeliveryReader, FeedbackLedger, FailureRequeue
{
  private readonly now: () => Date;
  private readonly shardsOf: (jobId: string) => Promise<number>;

  constructor(private readonly options: DynamoDeliveriesOptions) {
    this.now = options.now ?? (() => new Date());
    this.shardsOf = options.shardsOf ?? (async () => 1);
  }

  /** The key of a recipient's delivery item: under its job's shard (see `deliveryPartition`). */
  /** The clause that sets an item's expiry on the write that makes it (none for a reader). */
  private expirySet(): string {
    return this.options.retentionDays === undefined
      ? ''
      : ', expires_at = if_not_exists(expires_at, :expires)';
  }

  private expiryValue(): Record<string, number> {
    const days = this.options.retentionDays;
    if (days === undefined) return {};
    return { ':expires': expiresAfter(this.now(), days) };
  }

  private async key(jobId: string, recipient: string) {
    const shards = await this.shardsOf(jobId);
    return {
      TableName: this.options.deliveriesTable,
      Key: { job_id: deliveryPartition(jobId, recipient, shards), recipient },
    };
  }

  /** Queries every partition key of a job's deliveries, one after another's pages, all at once. */
  private async queryJob(
    jobId: string,
    input: Omit<QueryCommandInput, 'TableName' | 'KeyConditionExpression'>,
  ) {
    const partitions = deliveryPartitions(jobId, await this.shardsOf(jobId));
    const parts = await Promise.all(
      partitions.map((partition) =>
        queryAll(this.options.client, {
          ...input,
          TableName: this.options.deliveriesTable,
          KeyConditionExpression: 'job_id = :job',
          ExpressionAttributeValues: { ...input.ExpressionAttributeValues, ':job': partition },
        }),
      ),
    );
    return parts.flat();
  }

  private chunkKey(jobId: string, chunk: number) {
    return {
      TableName: this.options.deliveriesTable,
      Key: { job_id: `${jobId}${CHUNK_CLAIMS_SUFFIX}`, recipient: String(chunk) },
    };
  }

  async claimChunk(jobId: string, chunk: number, recipients: readonly string[]): Promise<ChunkClaim> {
    const { leaseMs } = this.options;
    if (leaseMs === undefined) throw new Error('DynamoDeliveries needs leaseMs to claim');
    const token = randomUUID();
    const now = this.now().getTime();
    try {
      const { Attributes } = await this.options.client.send(
        new UpdateCommand({
          ...this.chunkKey(jobId, chunk),
          UpdateExpression: `SET claim_token = :token, lease_until = :lease${this.expirySet()}`,
          // Never claimed, or its holder's lease ended (it died, or gave the chunk back to wait).
          ConditionExpression: 'attribute_not_exists(recipient) OR lease_until < :now',
          ExpressionAttributeValues: {
            ':token': token,
            ':lease': now + leaseMs,
            ':now': now,
            ...this.expiryValue(),
          },
          ReturnValues: 'ALL_OLD',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      // A first claim: nobody sent any of the chunk, so there is nothing to read.
      if (!Attributes) return { state: 'claimed', token, found: undefined };
      // Taken over: what the holder before recorded decides what is left (read after the claim, so
      // nothing it writes later can be missed: its lease, longer than its life, is over).
      return { state: 'claimed', token, found: await this.getMany(jobId, recipients, { consistent: true }) };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const leaseUntil = rawNumber(error.Item as RawItem | undefined, 'lease_until') ?? now;
      return { state: 'held', leaseUntil };
    }
  }

  async releaseChunk(jobId: string, chunk: number, token: string): Promise<void> {
    try {
      await this.options.client.send(
        new UpdateCommand({
          ...this.chunkKey(jobId, chunk),
          UpdateExpression: 'SET lease_until = :ended REMOVE claim_token',
          ConditionExpression: 'claim_token = :token',
          ExpressionAttributeValues: { ':token': token, ':ended': 0 },
        }),
      );
    } catch (error) {
      // Taken over since: nothing of ours to give back.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  async recordCopies(
    jobId: string,
    recipient: string,
    copies: Readonly<Record<string, string>>,
  ): Promise<void> {
    await this.updateUnderClaim(jobId, recipient, {
      // The whole map, every copy sent so far: the first copy's write creates the item.
      UpdateExpression: `SET copy_ids = :copies${this.expirySet()}`,
      ConditionExpression: 'attribute_not_exists(#status)',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':copies': copies, ...this.expiryValue() },
    });
  }

  /** A write the caller may make only while its claim holds: a failed condition is `ClaimLostError`. */
  private async updateUnderClaim(
    jobId: string,
    recipient: string,
    update: Omit<UpdateCommandInput, 'TableName' | 'Key'>,
  ): Promise<void> {
    try {
      await this.options.client.send(new UpdateCommand({ ...(await this.key(jobId, recipient)), ...update }));
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw new ClaimLostError(jobId, recipient);
      throw error;
    }
  }

  async claim(
    jobId: string,
    recipients: readonly { recipient: string; attempts: number }[],
  ): Promise<Map<string, Claim>> {
    const { leaseMs } = this.options;
    if (leaseMs === undefined) throw new Error('DynamoDeliveries needs leaseMs to claim');
    // One claim per recipient, whatever the batch repeats: a second claim would find the first held.
    const unique = [...new Map(recipients.map((entry) => [entry.recipient, entry])).values()];
    const claims = await mapConcurrently(unique, CONCURRENT_WRITES, async ({ recipient, attempts }) => {
      const token = randomUUID();
      const now = this.now().getTime();
      try {
        const { Attributes } = await this.options.client.send(
          new UpdateCommand({
            ...(await this.key(jobId, recipient)),
            // The copies an earlier claim handed over stay, and come back with the claim (ALL_OLD).
            UpdateExpression: `SET #status = :sending, claim_token = :token, lease_until = :lease, attempts = :attempts, copy_ids = if_not_exists(copy_ids, :noCopies)${this.expirySet()}`,
            // Free (never claimed, or queued again by a retry), or claimed by a consumer whose lease
            // ended before the transport took the email.
            ConditionExpression:
              'attribute_not_exists(recipient) OR #status = :queued OR (#status = :sending AND lease_until < :now AND attribute_not_exists(message_id))',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: {
              ':sending': 'sending',
              ':queued': 'queued',
              ':token': token,
              ':lease': now + leaseMs,
              ':now': now,
              ':attempts': attempts,
              ':noCopies': {},
              ...this.expiryValue(),
            },
            ReturnValues: 'ALL_OLD',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        const copies = (Attributes?.copy_ids ?? {}) as Record<string, string>;
        return [recipient, { state: 'claimed', token, copies }] as const;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        const claim = await this.claimTaken(jobId, recipient, (error.Item ?? {}) as RawItem, token);
        return [recipient, claim] as const;
      }
    });
    return new Map(claims);
  }

  /** Reads what a refused claim found; a handed-over email is taken over, to be recorded as sent. */
  private async claimTaken(jobId: string, recipient: string, item: RawItem, token: string): Promise<Claim> {
    const status = rawString(item, 'status');
    // An item with no status is a chunk's recipient whose cc copies are out: its chunk's message
    // sends it (the sweeper enqueues that chunk if it was lost), never a message of its own.
    if (status === undefined && rawString(item, 'recipient') !== undefined) return { state: 'done' };
    // No item came back (DynamoDB returns the item that failed the condition, so only a table
    // that answers otherwise), or a retry queued it in between: never read that as done, look again in a second.
    if (status === undefined || status === 'queued')
      return { state: 'held', leaseUntil: this.now().getTime() };
    if (status !== 'sending') return { state: 'done' };
    const messageId = rawString(item, 'message_id');
    if (messageId === undefined) return { state: 'held', leaseUntil: rawNumber(item, 'lease_until') ?? 0 };
    try {
      await this.options.client.send(
        new UpdateCommand({
          ...(await this.key(jobId, recipient)),
          UpdateExpression: 'SET claim_token = :token',
          ConditionExpression: '#status = :sending AND message_id = :messageId',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':sending': 'sending', ':token': token, ':messageId': messageId },
        }),
      );
      const snapshot = rawString(item, 'snapshot');
      return { state: 'handedOver', token, messageId, ...(snapshot ? { snapshot } : {}) };
    } catch (error) {
      // Recorded in between by the consumer that sent it.
      if (error instanceof ConditionalCheckFailedException) return { state: 'done' };
      throw error;
    }
  }

  async handOver(
    jobId: string,
    recipient: string,
    token: string,
    messageId: string,
    { copyTo, snapshot }: { copyTo?: string | undefined; snapshot?: string | undefined } = {},
  ): Promise<void> {
    await this.updateUnderClaim(jobId, recipient, {
      // The claim wrote the copies' map: a copy's id goes in it by address.
      UpdateExpression:
        copyTo === undefined
          ? `SET message_id = :messageId, handed_over_at = :now${snapshot ? ', #snapshot = :snapshot' : ''}`
          : 'SET copy_ids.#copyTo = :messageId',
      ConditionExpression: 'claim_token = :token',
      // `snapshot` is one of DynamoDB's reserved words.
      ...(copyTo === undefined
        ? snapshot
          ? { ExpressionAttributeNames: { '#snapshot': 'snapshot' } }
          : {}
        : { ExpressionAttributeNames: { '#copyTo': copyTo } }),
      ExpressionAttributeValues: {
        ':token': token,
        ':messageId': messageId,
        ...(copyTo === undefined ? { ':now': this.now().toISOString() } : {}),
        ...(copyTo === undefined && snapshot ? { ':snapshot': snapshot } : {}),
      },
    });
  }

  async release(jobId: string, recipient: string, token: string): Promise<void> {
    try {
      // The lease ends now rather than the item going: copies it handed over stay recorded, so the
      // next claim, at once, sends only what is left.
      await this.options.client.send(
        new UpdateCommand({
          ...(await this.key(jobId, recipient)),
          UpdateExpression: 'SET lease_until = :ended REMOVE claim_token',
          ConditionExpression: 'claim_token = :token AND attribute_not_exists(message_id)',
          ExpressionAttributeValues: { ':token': token, ':ended': 0 },
        }),
      );
    } catch (error) {
      // Taken over or recorded since: nothing of ours to give back.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /**
   * Each outcome is one conditional write on its delivery item, under the claim that decided it (a
   * claim taken over or recorded since makes it a duplicate). The job's counters follow from the
   * table's stream (see `OutcomeCounts`), never from here.
   */
  async record(jobId: string, outcomes: readonly DeliveryOutcome[]): Promise<RecordResult> {
    const unique = [...new Map(outcomes.map((outcome) => [outcome.recipient, outcome])).values()];
    const result: RecordResult = { recorded: [], duplicates: outcomes.length - unique.length, failed: [] };
    // Each write stands alone: one that fails leaves the others recorded, and says so.
    await mapConcurrently(unique, CONCURRENT_WRITES, async (outcome) => {
      try {
        await this.options.client.send(new UpdateCommand(await this.outcomeWrite(jobId, outcome)));
        result.recorded.push(outcome);
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) result.duplicates++;
        else {
          result.failed.push(outcome);
          result.error ??= error;
        }
      }
    });
    return result;
  }

  private async outcomeWrite(jobId: string, outcome: DeliveryOutcome): Promise<UpdateCommandInput> {
    const sets = [
      '#status = :status',
      // Counted on the job from the stream (outcomes written by the version before were counted in
      // their own transaction, and the counter leaves them alone).
      `${STREAM_COUNTED} = :counted`,
      'processed_at = :now',
      'cc = :cc',
      'attempts = :attempts',
      ...(outcome.error === undefined ? [] : ['#error = :error']),
      ...(outcome.reason === undefined ? [] : ['failure_reason = :reason']),
      // SES's message id and its time are written with the outcome, in the one write after the send.
      ...(outcome.messageId
        ? ['message_id = :messageId', 'handed_over_at = if_not_exists(handed_over_at, :now)']
        : []),
      ...(outcome.copyErrors ? ['copy_errors = :copyErrors'] : []),
      ...(outcome.snapshot ? ['#snapshot = :snapshot'] : []),
    ];
    const removes = ['claim_token', 'lease_until', ...(outcome.copyErrors ? [] : ['copy_errors'])];
    const chunked = outcome.chunk !== undefined;
    return {
      ...(await this.key(jobId, outcome.recipient)),
      UpdateExpression: `SET ${sets.join(', ')}${this.expirySet()} REMOVE ${removes.join(', ')}`,
      // A chunk's recipient: the first outcome stands (the chunk's claim kept others from sending).
      ConditionExpression: chunked ? 'attribute_not_exists(#status)' : 'claim_token = :token',
      ExpressionAttributeNames: {
        '#status': 'status',
        ...(outcome.error === undefined ? {} : { '#error': 'error' }),
        // `snapshot` is one of DynamoDB's reserved words.
        ...(outcome.snapshot ? { '#snapshot': 'snapshot' } : {}),
      },
      ExpressionAttributeValues: {
        ':status': outcome.status,
        ':counted': true,
        ':now': this.now().toISOString(),
        ':cc': outcome.cc,
        ':attempts': outcome.attempts,
        ...(chunked ? {} : { ':token': outcome.claimToken }),
        ...(outcome.error === undefined ? {} : { ':error': outcome.error }),
        ...(outcome.reason === undefined ? {} : { ':reason': outcome.reason }),
        ...(outcome.messageId ? { ':messageId': outcome.messageId } : {}),
        ...(outcome.copyErrors ? { ':copyErrors': outcome.copyErrors } : {}),
        ...this.expiryValue(),
        ...(outcome.snapshot ? { ':snapshot': outcome.snapshot } : {}),
      },
    };
  }

  async recordFeedback(jobId: string, recipient: string, report: FeedbackReport): Promise<FeedbackNoted> {
    const entry: DeliveryFeedback = { type: report.kind, at: report.at, detail: report.detail };
    const counter =
      report.kind === 'unsubscribe' && !report.countOnJob ? undefined : FEEDBACK_COUNTERS[report.kind];
    const delivery = {
      Update: {
        ...(await this.key(jobId, recipient)),
        UpdateExpression:
          'SET feedback = list_append(if_not_exists(feedback, :none), :entry) ADD feedback_ids :ids',
        // SES's report is about the email with its message id; an unsubscribe, about a sent email of the delivery.
        ConditionExpression: `${report.kind === 'unsubscribe' ? '#status = :sent' : 'message_id = :messageId'} AND NOT contains(feedback_ids, :feedbackId) AND (attribute_not_exists(feedback) OR size(feedback) < :most)`,
        ...(report.kind === 'unsubscribe' ? { ExpressionAttributeNames: { '#status': 'status' } } : {}),
        ExpressionAttributeValues: {
          ':none': [],
          ':entry': [entry],
          ':ids': new Set([report.feedbackId]),
          ...(report.kind === 'unsubscribe' ? { ':sent': 'sent' } : { ':messageId': report.messageId }),
          ':feedbackId': report.feedbackId,
          ':most': MAX_FEEDBACK_PER_DELIVERY,
        },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
      },
    };
    const job = counter && {
      Update: { TableName: this.options.jobsTable, Key: { job_id: jobId }, ...feedbackRecorded(counter) },
    };
    // Hard bounces and complaints count in the reputation window too, in the same transaction (once).
    const window =
      report.kind === 'bounce' || report.kind === 'complaint'
        ? reputationAdded(
            this.options.jobsTable,
            report.kind === 'bounce' ? 'bounced' : 'complained',
            1,
            this.now(),
          )
        : undefined;
    const event = this.options.outbox && emailFeedback(jobId, recipient, report);
    const told = event && this.options.outbox?.put(event, this.now());
    for (let attempt = 0; attempt < MAX_TRANSACTION_ATTEMPTS; attempt++) {
      try {
        await this.options.client.send(
          new TransactWriteCommand({
            // The event last: the reasons read below are the delivery's and the job's, by position.
            TransactItems: [
              delivery,
              ...(job ? [job] : []),
              ...(window ? [window] : []),
              ...(told ? [told] : []),
            ],
          }),
        );
        return 'recorded';
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const [deliveryReason, jobReason] = error.CancellationReasons ?? [];
        if (deliveryReason?.Code === 'ConditionalCheckFailed') {
          const found = (deliveryReason.Item ?? {}) as RawItem;
          const ids = (found.feedback_ids as { SS?: string[] } | undefined)?.SS;
          if (ids?.includes(report.feedbackId)) return 'duplicate';
          // Claimed, or its copies out, and SES's id not written yet (SES answered a moment ago, or
          // the write is being retried): the report is about this email, and is read again later.
          // (A chunk's recipient without cc has no item until its outcome: a report found before
          // that write is unmatched, as one about a cc copy is.)
          const status = rawString(found, 'status');
          if (
            Object.keys(found).length > 0 &&
            (status === 'sending' || status === undefined) &&
            rawString(found, 'message_id') === undefined
          )
            return 'pending';
          return 'unmatched';
        }
        if (jobReason?.Code === 'ConditionalCheckFailed') return 'unmatched';
        // TransactionConflict (the outcome counter is counting on the job) or a throttle: wait and retry.
        await backoff(attempt);
      }
    }
    throw new Error(
      `Could not record SES feedback on job ${jobId} after ${MAX_TRANSACTION_ATTEMPTS} attempts`,
    );
  }

  async getMany(
    jobId: string,
    recipients: readonly string[],
    options: { consistent?: boolean } = {},
  ): Promise<Map<string, DeliveryRecord>> {
    const keys = await Promise.all(
      [...new Set(recipients)].map(async (recipient) => (await this.key(jobId, recipient)).Key),
    );
    const items = await batchGetAll(this.options.client, this.options.deliveriesTable, keys, options);
    return new Map(items.map((item) => [String(item.recipient), asRecord(jobId, item)]));
  }

  async failures(jobId: string): Promise<DeliveryRecord[]> {
    const items = await this.queryJob(jobId, {
      FilterExpression: '#status = :failed',
      ExpressionAttributeNames: { '#status': 'status', '#error': 'error' },
      ExpressionAttributeValues: { ':failed': 'failed' },
      ProjectionExpression: 'job_id, recipient, #status, #error, failure_reason',
      ConsistentRead: true,
    });
    return items.map((item) => asRecord(jobId, item));
  }

  /**
   * One transaction per 99 recipients, each moving its recipients `failed` → `queued` together with
   * the job's counters (see `failuresRequeued`), so the ledger and the counts never disagree,
   * whatever stops the retry halfway: what was written is running again, and the sweeper enqueues
   * it if its messages never left. A recipient no longer `failed` drops out of its chunk.
   */
  async requeueFailures(jobId: string, retry: RetryRequest): Promise<RetryWritten> {
    const requeued: string[] = [];
    for (const part of chunks([...new Set(retry.recipients)], DELIVERIES_PER_TRANSACTION)) {
      let pending = part;
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt >= MAX_TRANSACTION_ATTEMPTS)
          throw new Error(`Could not requeue the failures of job ${jobId} after ${attempt} attempts`);
        const first = requeued.length === 0;
        try {
          await this.options.client.send(
            new TransactWriteCommand(await this.requeueTransaction(jobId, pending, retry, first)),
          );
          requeued.push(...pending);
          break;
        } catch (error) {
          if (!(error instanceof TransactionCanceledException)) throw error;
          const reasons = error.CancellationReasons ?? [];
          const changed = new Set(
            pending.filter((_, index) => reasons[index]?.Code === 'ConditionalCheckFailed'),
          );
          if (changed.size > 0) {
            pending = pending.filter((recipient) => !changed.has(recipient));
            continue;
          }
          const jobReason = reasons[pending.length];
          if (jobReason?.Code === 'ConditionalCheckFailed') {
            const job = (jobReason.Item ?? {}) as RawItem;
            const keys = (job.retry_keys as { SS?: string[] } | undefined)?.SS ?? [];
            if (first && retry.idempotencyKey !== undefined && keys.includes(retry.idempotencyKey))
              return { state: 'replayed' };
            if (first) return { state: 'refused', status: rawString(job, 'status') };
            // The job ended under the retry (stray messages drained what it had requeued): what was
            // requeued stands and is enqueued; the failures left stay failed, for another retry.
            return { state: 'requeued', recipients: requeued };
          }
          await backoff(attempt);
        }
      }
    }
    return { state: 'requeued', recipients: requeued };
  }

  private async requeueTransaction(
    jobId: string,
    recipients: readonly string[],
    retry: RetryRequest,
    first: boolean,
  ): Promise<TransactWriteCommandInput> {
    const now = this.now().toISOString();
    const keys = await Promise.all(recipients.map((recipient) => this.key(jobId, recipient)));
    const deliveries = keys.map((key) => ({
      Update: {
        ...key,
        // The failure's story (error, reason, time) goes; `attempts` stays, and the next claim resets it.
        UpdateExpression: 'SET #status = :queued REMOVE #error, failure_reason, processed_at',
        ConditionExpression: '#status = :failed',
        ExpressionAttributeNames: { '#status': 'status', '#error': 'error' },
        ExpressionAttributeValues: { ':queued': 'queued', ':failed': 'failed' },
      },
    }));
    const job = {
      Update: {
        TableName: this.options.jobsTable,
        Key: { job_id: jobId },
        ...failuresRequeued({
          count: recipients.length,
          token: retry.token,
          first,
          idempotencyKey: retry.idempotencyKey,
          deadline: retry.deadline.toISOString(),
          now,
        }),
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
      },
    };
    return { TransactItems: [...deliveries, job] };
  }

  async processedRecipients(jobId: string): Promise<Set<string>> {
    // A claim under way, a recipient a retry queued again, or one with only its copies written, is
    // no outcome: if its message was lost, the recipient is enqueued again.
    const states = await this.recipientStates(jobId);
    return new Set(
      [...states].filter(([, status]) => hasOutcome({ status })).map(([recipient]) => recipient),
    );
  }

  async recipientStates(jobId: string): Promise<Map<string, DeliveryStatus | undefined>> {
    const items = await this.queryJob(jobId, {
      ExpressionAttributeNames: { '#status': 'status' },
      ProjectionExpression: 'recipient, #status',
      ConsistentRead: true,
    });
    return new Map(items.map((item) => [String(item.recipient), item.status as DeliveryStatus | undefined]));
  }
}
