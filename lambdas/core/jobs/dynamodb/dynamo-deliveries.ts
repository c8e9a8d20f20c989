import { randomUUID } from 'node:crypto';
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { backoff, chunks, mapConcurrently } from '../../concurrency';
import { batchGetAll, queryAll } from '../../dynamo-paging';
import {
  type Claim,
  ClaimLostError,
  type DeliveryClaims,
  type DeliveryFeedback,
  type DeliveryOutcome,
  type DeliveryReader,
  type DeliveryRecord,
  type FailureRequeue,
  type FeedbackLedger,
  type FeedbackNoted,
  type FeedbackReport,
  JobGoneError,
  MAX_FEEDBACK_PER_DELIVERY,
  type OutcomeStatus,
  type ProgressRecorder,
  type RecordResult,
  type RetryRequest,
  type RetryWritten,
} from '../deliveries';
import { FEEDBACK_COUNTERS, failuresRequeued, feedbackRecorded, outcomesRecorded } from '../job-status';

/** The DynamoDB adapter of the delivery ports (`../deliveries.ts`): the deliveries table, with the job's counters. */
/** A transaction holds at most 100 actions: 99 deliveries and the job. */
const DELIVERIES_PER_TRANSACTION = 99;
const MAX_TRANSACTION_ATTEMPTS = 12;

export interface DynamoDeliveriesOptions {
  client: DynamoDBDocumentClient;
  jobsTable: string;
  deliveriesTable: string;
  /**
   * How long a claim is held: longer than a consumer can run (its timeout), so a live consumer's
   * claim is never taken over. Only consumers claim; readers need not set it.
   */
  leaseMs?: number;
  now?: () => Date;
}

/** Claims written at once per batch: each is a single small conditional write. */
const CONCURRENT_CLAIMS = 10;

/** A delivery item as `ReturnValuesOnConditionCheckFailure` hands it back: the document client leaves it marshalled. */
type RawItem = Record<string, unknown>;
const attribute = (item: RawItem, name: string, type: 'S' | 'N'): string | undefined => {
  const value = item[name];
  if (typeof value === 'string' || typeof value === 'number') return String(value);
  const marshalled = (value as Record<string, unknown> | undefined)?.[type];
  return typeof marshalled === 'string' ? marshalled : undefined;
};
const stringAttribute = (item: RawItem, name: string) => attribute(item, name, 'S');
const numberAttribute = (item: RawItem, name: string) => attribute(item, name, 'N');

export class DynamoDeliveries
  implements ProgressRecorder, DeliveryClaims, DeliveryReader, FeedbackLedger, FailureRequeue
{
  private readonly now: () => Date;

  constructor(private readonly options: DynamoDeliveriesOptions) {
    this.now = options.now ?? (() => new Date());
  }

  private key(jobId: string, recipient: string) {
    return { TableName: this.options.deliveriesTable, Key: { job_id: jobId, recipient } };
  }

  async claim(
    jobId: string,
    recipients: readonly { recipient: string; attempts: number }[],
  ): Promise<Map<string, Claim>> {
    const { leaseMs } = this.options;
    if (leaseMs === undefined) throw new Error('DynamoDeliveries needs leaseMs to claim');
    // One claim per recipient, whatever the batch repeats: a second claim would find the first held.
    const unique = [...new Map(recipients.map((entry) => [entry.recipient, entry])).values()];
    const claims = await mapConcurrently(unique, CONCURRENT_CLAIMS, async ({ recipient, attempts }) => {
      const token = randomUUID();
      const now = this.now().getTime();
      try {
        const { Attributes } = await this.options.client.send(
          new UpdateCommand({
            ...this.key(jobId, recipient),
            // The copies an earlier claim handed over stay, and come back with the claim (ALL_OLD).
            UpdateExpression:
              'SET #status = :sending, claim_token = :token, lease_until = :lease, attempts = :attempts, copy_ids = if_not_exists(copy_ids, :noCopies)',
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
    const status = stringAttribute(item, 'status');
    // No item came back (DynamoDB returns the item that failed the condition, so only a table
    // that answers otherwise), or a retry queued it in between: never read that as done, look again in a second.
    if (status === undefined || status === 'queued')
      return { state: 'held', leaseUntil: this.now().getTime() };
    if (status !== 'sending') return { state: 'done' };
    const messageId = stringAttribute(item, 'message_id');
    if (messageId === undefined)
      return { state: 'held', leaseUntil: Number(numberAttribute(item, 'lease_until') ?? 0) };
    try {
      await this.options.client.send(
        new UpdateCommand({
          ...this.key(jobId, recipient),
          UpdateExpression: 'SET claim_token = :token',
          ConditionExpression: '#status = :sending AND message_id = :messageId',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':sending': 'sending', ':token': token, ':messageId': messageId },
        }),
      );
      const snapshot = stringAttribute(item, 'snapshot');
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
    try {
      await this.options.client.send(
        new UpdateCommand({
          ...this.key(jobId, recipient),
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
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw new ClaimLostError(jobId, recipient);
      throw error;
    }
  }

  async release(jobId: string, recipient: string, token: string): Promise<void> {
    try {
      // The lease ends now rather than the item going: copies it handed over stay recorded, so the
      // next claim, at once, sends only what is left.
      await this.options.client.send(
        new UpdateCommand({
          ...this.key(jobId, recipient),
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

  async record(jobId: string, outcomes: readonly DeliveryOutcome[]): Promise<RecordResult> {
    const unique = [...new Map(outcomes.map((outcome) => [outcome.recipient, outcome])).values()];
    const result: RecordResult = {
      recorded: [],
      duplicates: outcomes.length - unique.length,
      completed: false,
    };
    for (const part of chunks(unique, DELIVERIES_PER_TRANSACTION)) {
      const partResult = await this.recordPart(jobId, part);
      result.recorded.push(...partResult.recorded);
      result.duplicates += partResult.duplicates;
      result.completed ||= partResult.completed;
    }
    return result;
  }

  /**
   * First try as if other recipients remain (`remaining > n`). If that condition fails, the job's
   * current item comes back with the cancellation: when exactly `n` remain, this part is the last
   * and the retry ends the job in the same transaction. Deliveries already recorded drop out; a
   * conflict with another transaction on the job item is retried after a jittered backoff.
   */
  private async recordPart(jobId: string, outcomes: DeliveryOutcome[]): Promise<RecordResult> {
    let pending = outcomes;
    let duplicates = 0;
    let last = false;
    // A cancelled outcome is decided only after the cancel was seen; otherwise a cancel is rare.
    let cancelling = outcomes.some((outcome) => outcome.status === 'cancelled');
    for (let attempt = 0; attempt < MAX_TRANSACTION_ATTEMPTS; attempt++) {
      if (pending.length === 0) return { recorded: [], duplicates, completed: false };
      try {
        await this.options.client.send(
          new TransactWriteCommand(this.transaction(jobId, pending, { last, cancelling })),
        );
        return { recorded: pending, duplicates, completed: last };
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const reasons = error.CancellationReasons ?? [];
        const recorded = new Set(
          pending
            .filter((_, index) => reasons[index]?.Code === 'ConditionalCheckFailed')
            .map((outcome) => outcome.recipient),
        );
        const jobReason = reasons[pending.length];
        if (recorded.size > 0) {
          duplicates += recorded.size;
          pending = pending.filter((outcome) => !recorded.has(outcome.recipient));
          last = false;
          continue;
        }
        if (jobReason?.Code === 'ConditionalCheckFailed') {
          const returned = jobReason.Item as RawItem | undefined;
          const state = returned?.remaining ? progressOf(returned) : await this.progress(jobId);
          if (state === undefined) throw new JobGoneError(jobId);
          const { remaining } = state;
          if (remaining >= pending.length) {
            // Exactly this many left: this part is the last. More left: another part got in first.
            last = remaining === pending.length;
            cancelling = state.cancelling;
            continue;
          }
          throw new Error(
            `Job ${jobId} has ${remaining} recipients left, fewer than the ${pending.length} being recorded`,
          );
        }
        // TransactionConflict (another consumer is updating the job) or a throttle: wait and retry.
        await backoff(attempt);
      }
    }
    throw new Error(`Could not record progress of job ${jobId} after ${MAX_TRANSACTION_ATTEMPTS} attempts`);
  }

  private async progress(jobId: string): Promise<JobProgress | undefined> {
    const { Item } = await this.options.client.send(
      new GetCommand({
        TableName: this.options.jobsTable,
        Key: { job_id: jobId },
        ProjectionExpression: 'remaining, cancel_requested_at',
        ConsistentRead: true,
      }),
    );
    return Item ? progressOf(Item) : undefined;
  }

  private transaction(
    jobId: string,
    outcomes: DeliveryOutcome[],
    { last, cancelling }: { last: boolean; cancelling: boolean },
  ): TransactWriteCommandInput {
    const now = this.now().toISOString();
    const counted = (status: OutcomeStatus) => outcomes.filter((outcome) => outcome.status === status).length;
    const deliveries = outcomes.map((outcome) => ({
      Update: {
        ...this.key(jobId, outcome.recipient),
        UpdateExpression: `SET #status = :status, processed_at = :now, cc = :cc, attempts = :attempts${outcome.error === undefined ? '' : ', #error = :error'}${outcome.reason === undefined ? '' : ', failure_reason = :reason'}${outcome.messageId ? ', message_id = :messageId' : ''}${outcome.copyErrors ? ', copy_errors = :copyErrors' : ''}${outcome.snapshot ? ', #snapshot = :snapshot' : ''} REMOVE claim_token, lease_until${outcome.copyErrors ? '' : ', copy_errors'}`,
        // Only under the claim that decided it: a claim taken over or recorded since makes this a duplicate.
        ConditionExpression: 'claim_token = :token',
        ExpressionAttributeNames: {
          '#status': 'status',
          ...(outcome.error === undefined ? {} : { '#error': 'error' }),
          ...(outcome.snapshot ? { '#snapshot': 'snapshot' } : {}),
        },
        ExpressionAttributeValues: {
          ':status': outcome.status,
          ':now': now,
          ':cc': outcome.cc,
          ':attempts': outcome.attempts,
          ':token': outcome.claimToken,
          ...(outcome.error === undefined ? {} : { ':error': outcome.error }),
          ...(outcome.reason === undefined ? {} : { ':reason': outcome.reason }),
          ...(outcome.messageId ? { ':messageId': outcome.messageId } : {}),
          ...(outcome.copyErrors ? { ':copyErrors': outcome.copyErrors } : {}),
          ...(outcome.snapshot ? { ':snapshot': outcome.snapshot } : {}),
        },
      },
    }));
    const progress = {
      Update: {
        TableName: this.options.jobsTable,
        Key: { job_id: jobId },
        ...outcomesRecorded({
          sent: counted('sent'),
          failed: counted('failed'),
          suppressed: counted('suppressed'),
          cancelled: counted('cancelled'),
          now,
          last,
          cancelling,
        }),
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
      },
    };
    return { TransactItems: [...deliveries, progress] };
  }

  async recordFeedback(jobId: string, recipient: string, report: FeedbackReport): Promise<FeedbackNoted> {
    const entry: DeliveryFeedback = { type: report.kind, at: report.at, detail: report.detail };
    const counter = FEEDBACK_COUNTERS[report.kind];
    const delivery = {
      Update: {
        ...this.key(jobId, recipient),
        UpdateExpression:
          'SET feedback = list_append(if_not_exists(feedback, :none), :entry) ADD feedback_ids :ids',
        ConditionExpression:
          'message_id = :messageId AND NOT contains(feedback_ids, :feedbackId) AND (attribute_not_exists(feedback) OR size(feedback) < :most)',
        ExpressionAttributeValues: {
          ':none': [],
          ':entry': [entry],
          ':ids': new Set([report.feedbackId]),
          ':messageId': report.messageId,
          ':feedbackId': report.feedbackId,
          ':most': MAX_FEEDBACK_PER_DELIVERY,
        },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
      },
    };
    const job = counter && {
      Update: { TableName: this.options.jobsTable, Key: { job_id: jobId }, ...feedbackRecorded(counter) },
    };
    for (let attempt = 0; attempt < MAX_TRANSACTION_ATTEMPTS; attempt++) {
      try {
        await this.options.client.send(
          new TransactWriteCommand({ TransactItems: job ? [delivery, job] : [delivery] }),
        );
        return 'recorded';
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const [deliveryReason, jobReason] = error.CancellationReasons ?? [];
        if (deliveryReason?.Code === 'ConditionalCheckFailed') {
          const found = (deliveryReason.Item ?? {}) as RawItem;
          const ids = (found.feedback_ids as { SS?: string[] } | undefined)?.SS;
          if (ids?.includes(report.feedbackId)) return 'duplicate';
          // Claimed, and SES's id not written yet (SES answered a moment ago, or the hand-over is
          // being retried): the report is about this email, and is read again later.
          if (
            stringAttribute(found, 'status') === 'sending' &&
            stringAttribute(found, 'message_id') === undefined
          )
            return 'pending';
          return 'unmatched';
        }
        if (jobReason?.Code === 'ConditionalCheckFailed') return 'unmatched';
        // TransactionConflict (a consumer is counting outcomes on the job) or a throttle: wait and retry.
        await backoff(attempt);
      }
    }
    throw new Error(
      `Could not record SES feedback on job ${jobId} after ${MAX_TRANSACTION_ATTEMPTS} attempts`,
    );
  }

  async getMany(jobId: string, recipients: readonly string[]): Promise<Map<string, DeliveryRecord>> {
    const keys = [...new Set(recipients)].map((recipient) => ({ job_id: jobId, recipient }));
    const items = await batchGetAll(this.options.client, this.options.deliveriesTable, keys);
    return new Map(items.map((item) => [String(item.recipient), item as unknown as DeliveryRecord]));
  }

  async failures(jobId: string): Promise<DeliveryRecord[]> {
    const items = await queryAll(this.options.client, {
      TableName: this.options.deliveriesTable,
      KeyConditionExpression: 'job_id = :job',
      FilterExpression: '#status = :failed',
      ExpressionAttributeNames: { '#status': 'status', '#error': 'error' },
      ExpressionAttributeValues: { ':job': jobId, ':failed': 'failed' },
      ProjectionExpression: 'job_id, recipient, #status, #error, failure_reason',
      ConsistentRead: true,
    });
    return items as unknown as DeliveryRecord[];
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
            new TransactWriteCommand(this.requeueTransaction(jobId, pending, retry, first)),
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
            if (first) return { state: 'refused', status: stringAttribute(job, 'status') };
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

  private requeueTransaction(
    jobId: string,
    recipients: readonly string[],
    retry: RetryRequest,
    first: boolean,
  ): TransactWriteCommandInput {
    const now = this.now().toISOString();
    const deliveries = recipients.map((recipient) => ({
      Update: {
        ...this.key(jobId, recipient),
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
    const items = await queryAll(this.options.client, {
      TableName: this.options.deliveriesTable,
      KeyConditionExpression: 'job_id = :job',
      // A claim under way, or a recipient a retry queued again, is no outcome: if its message was
      // lost, the recipient is enqueued again.
      FilterExpression: 'NOT #status IN (:sending, :queued)',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':job': jobId, ':sending': 'sending', ':queued': 'queued' },
      ProjectionExpression: 'recipient',
      ConsistentRead: true,
    });
    return new Set(items.map((item) => String(item.recipient)));
  }
}

/** What a recorder needs of the job item: how many recipients remain, and whether a cancel was asked. */
interface JobProgress {
  remaining: number;
  cancelling: boolean;
}
const progressOf = (item: RawItem): JobProgress => ({
  remaining: Number(numberAttribute(item, 'remaining')),
  cancelling: item.cancel_requested_at !== undefined,
});
