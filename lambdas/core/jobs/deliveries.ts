import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { backoff, chunks } from '../concurrency';
import { batchGetAll, queryAll } from '../dynamo-paging';
import { outcomesRecorded } from './job-status';

export type DeliveryStatus = 'sent' | 'failed';

/** What became of one recipient of a job. */
export interface DeliveryOutcome {
  recipient: string;
  status: DeliveryStatus;
  subject: string | null;
  body: string | null;
  cc: string[];
  error?: string;
  /** How many times the message was received, this time included. */
  attempts: number;
}

export interface DeliveryRecord extends DeliveryOutcome {
  job_id: string;
  processed_at: string;
}

export interface RecordResult {
  /** The outcomes this call recorded (the others were recorded before). */
  recorded: DeliveryOutcome[];
  /** Outcomes for recipients already recorded (a redelivered message): they change nothing. */
  duplicates: number;
  /** Whether this call recorded the job's last recipient, and so ended it. */
  completed: boolean;
}

/**
 * Records outcomes and the job's counters together, so each recipient is counted exactly once
 * whatever SQS redelivers: one transaction per job (at most 99 deliveries and the job's counters) in
 * which each delivery is written only if absent, and the job's `remaining` can only go down by what
 * was written. The transaction that writes the last recipients also ends the job.
 */
export interface ProgressRecorder {
  record(jobId: string, outcomes: readonly DeliveryOutcome[]): Promise<RecordResult>;
}

export interface DeliveryReader {
  /** The recorded deliveries among these recipients of a job. */
  getMany(jobId: string, recipients: readonly string[]): Promise<Map<string, DeliveryRecord>>;
  /** Every recipient of a job that has an outcome. */
  processedRecipients(jobId: string): Promise<Set<string>>;
}

export class JobGoneError extends Error {
  constructor(jobId: string) {
    super(`Job ${jobId} does not exist`);
    this.name = 'JobGoneError';
  }
}

/** A transaction holds at most 100 actions: 99 deliveries and the job. */
const DELIVERIES_PER_TRANSACTION = 99;
const MAX_TRANSACTION_ATTEMPTS = 12;

export interface DynamoDeliveriesOptions {
  client: DynamoDBDocumentClient;
  jobsTable: string;
  deliveriesTable: string;
  now?: () => Date;
}

export class DynamoDeliveries implements ProgressRecorder, DeliveryReader {
  private readonly now: () => Date;

  constructor(private readonly options: DynamoDeliveriesOptions) {
    this.now = options.now ?? (() => new Date());
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
    for (let attempt = 0; attempt < MAX_TRANSACTION_ATTEMPTS; attempt++) {
      if (pending.length === 0) return { recorded: [], duplicates, completed: false };
      try {
        await this.options.client.send(new TransactWriteCommand(this.transaction(jobId, pending, last)));
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
          const returned = (jobReason.Item as { remaining?: { N?: string } } | undefined)?.remaining?.N;
          const remaining = returned === undefined ? await this.remaining(jobId) : Number(returned);
          if (remaining === undefined) throw new JobGoneError(jobId);
          if (remaining >= pending.length) {
            // Exactly this many left: this part is the last. More left: another part got in first.
            last = remaining === pending.length;
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

  private async remaining(jobId: string): Promise<number | undefined> {
    const { Item } = await this.options.client.send(
      new GetCommand({
        TableName: this.options.jobsTable,
        Key: { job_id: jobId },
        ProjectionExpression: 'remaining',
        ConsistentRead: true,
      }),
    );
    return Item ? Number(Item.remaining) : undefined;
  }

  private transaction(jobId: string, outcomes: DeliveryOutcome[], last: boolean): TransactWriteCommandInput {
    const now = this.now().toISOString();
    const sent = outcomes.filter((outcome) => outcome.status === 'sent').length;
    const failed = outcomes.length - sent;
    const deliveries = outcomes.map((outcome) => ({
      Put: {
        TableName: this.options.deliveriesTable,
        Item: { ...outcome, job_id: jobId, processed_at: now },
        ConditionExpression: 'attribute_not_exists(recipient)',
      },
    }));
    const progress = {
      Update: {
        TableName: this.options.jobsTable,
        Key: { job_id: jobId },
        ...outcomesRecorded({ sent, failed, now, last }),
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
      },
    };
    return { TransactItems: [...deliveries, progress] };
  }

  async getMany(jobId: string, recipients: readonly string[]): Promise<Map<string, DeliveryRecord>> {
    const keys = [...new Set(recipients)].map((recipient) => ({ job_id: jobId, recipient }));
    const items = await batchGetAll(this.options.client, this.options.deliveriesTable, keys);
    return new Map(items.map((item) => [String(item.recipient), item as unknown as DeliveryRecord]));
  }

  async processedRecipients(jobId: string): Promise<Set<string>> {
    const items = await queryAll(this.options.client, {
      TableName: this.options.deliveriesTable,
      KeyConditionExpression: 'job_id = :job',
      ExpressionAttributeValues: { ':job': jobId },
      ProjectionExpression: 'recipient',
      ConsistentRead: true,
    });
    return new Set(items.map((item) => String(item.recipient)));
  }
}
