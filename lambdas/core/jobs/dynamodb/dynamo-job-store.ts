import {
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { INDEX } from '../../bindings';
import { decodeCursor, encodeCursor, type Page } from '../../cursor';
import { queryAll } from '../../dynamo-paging';
import { type EventOutbox, writeTelling } from '../../events/dynamodb/outbox';
import { jobAccepted, jobEnded, type OutboxEvent } from '../../events/events';
import { expiresAfter } from '../../ttl';
import * as z from '../../zod';
import type { OutcomeStatus } from '../deliveries';
import type { JobRecord } from '../job';
import {
  ACTIVE_MARKER,
  cancelRequested,
  countedFromLedger,
  type JobUpdate,
  recoveryForgotten,
  recoveryNoticed,
  reenqueueClaimed,
  SCHEDULED_MARKER,
  scheduledJobCancelled,
  scheduledJobStarted,
} from '../job-status';
import type { JobQuery, JobStore, SendingLook } from '../job-store';

/** How many index pages one listing request reads at most while a status filter skips items. */
const MAX_PAGES_PER_LISTING = 10;

/** The jobs table: one item per job with its status and counters (the content is elsewhere). */
export class DynamoJobStore implements JobStore {
  constructor(
    private readonly options: {
      client: DynamoDBDocumentClient;
      tableName: string;
      /** Where a job's acceptance and its end are told (`Job Accepted`, `Job Completed`): a writer's. */
      outbox?: EventOutbox | undefined;
      /** Days a job is kept from its start (`jobRetentionDays`), by DynamoDB's TTL; only the writer sets it. */
      retentionDays?: number | undefined;
    },
  ) {}

  async create(job: JobRecord): Promise<{ job: JobRecord; created: boolean }> {
    const created = await writeTelling(
      this.options.client,
      {
        Put: {
          TableName: this.options.tableName,
          Item: {
            ...job,
            ...(this.options.retentionDays === undefined
              ? {}
              : { expires_at: expiresAfter(job.send_at ?? job.created_at, this.options.retentionDays) }),
          },
          ConditionExpression: 'attribute_not_exists(job_id)',
        },
      },
      this.options.outbox,
      jobAccepted(job),
    );
    if (created) return { job, created: true };
    const existing = await this.get(job.job_id);
    if (!existing) throw new Error(`Job ${job.job_id} failed its condition but is not there; try again`);
    return { job: existing, created: false };
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const { Item } = await this.options.client.send(
      new GetCommand({ TableName: this.options.tableName, Key: { job_id: jobId }, ConsistentRead: true }),
    );
    return Item as JobRecord | undefined;
  }

  /**
   * Newest first from the index by API key. A status filter is applied while reading, so reading
   * goes on across index pages (a bounded number) until the page is full.
   */
  async listForKey(apiKeyId: string, { status, limit, cursor }: JobQuery): Promise<Page<JobRecord>> {
    const scope = `jobs:${apiKeyId}:${status ?? '*'}`;
    const keySchema = z.strictObject({
      job_id: z.uuid(),
      api_key_id: z.literal(apiKeyId),
      created_at: z.iso.datetime(),
    });
    let startKey: Record<string, unknown> | undefined = cursor
      ? decodeCursor(cursor, scope, keySchema)
      : undefined;
    const items: JobRecord[] = [];
    let lastEvaluated: Record<string, unknown> | undefined;
    for (let page = 0; page < MAX_PAGES_PER_LISTING && items.length <= limit; page++) {
      const input: QueryCommandInput = {
        TableName: this.options.tableName,
        IndexName: INDEX.jobsByApiKey,
        KeyConditionExpression: 'api_key_id = :key',
        ExpressionAttributeValues: { ':key': apiKeyId, ...(status ? { ':status': status } : {}) },
        ...(status
          ? { FilterExpression: '#status = :status', ExpressionAttributeNames: { '#status': 'status' } }
          : {}),
        ScanIndexForward: false,
        Limit: limit + 1 - items.length,
        ExclusiveStartKey: startKey,
      };
      const result = await this.options.client.send(new QueryCommand(input));
      items.push(...((result.Items ?? []) as JobRecord[]));
      lastEvaluated = result.LastEvaluatedKey;
      if (!lastEvaluated) break;
      startKey = lastEvaluated;
    }
    const pageItems = items.slice(0, limit);
    const last = pageItems.at(-1);
    const keyOf = (job: JobRecord) => ({
      job_id: job.job_id,
      api_key_id: job.api_key_id,
      created_at: job.created_at,
    });
    let nextCursor: string | null = null;
    if (items.length > limit && last) nextCursor = encodeCursor(keyOf(last), scope);
    else if (lastEvaluated) nextCursor = encodeCursor(lastEvaluated, scope);
    return { items: pageItems, nextCursor };
  }

  async activeJobs(createdUntil?: Date): Promise<JobRecord[]> {
    const items = await queryAll(this.options.client, {
      TableName: this.options.tableName,
      IndexName: INDEX.activeJobs,
      // The index is sorted by `created_at`.
      KeyConditionExpression: `active = :active${createdUntil ? ' AND created_at <= :until' : ''}`,
      ExpressionAttributeValues: {
        ':active': ACTIVE_MARKER,
        ...(createdUntil ? { ':until': createdUntil.toISOString() } : {}),
      },
    });
    return items as unknown as JobRecord[];
  }

  async noticeRecovery(jobId: string, seenAt: Date): Promise<void> {
    // A job that ended meanwhile has nothing to recover.
    await this.updateIfStill(jobId, recoveryNoticed(seenAt.toISOString()));
  }

  countFromLedger(job: JobRecord, tally: Record<OutcomeStatus, number>, now: Date): Promise<boolean> {
    const cancelling = job.cancel_requested_at !== undefined && job.cancel_requested_at !== null;
    return this.updateIfStill(
      job.job_id,
      countedFromLedger({ ...tally, readUpdatedAt: job.updated_at, cancelling, now: now.toISOString() }),
      // The ledger's tally is the job's count, absolute.
      jobEnded({
        job,
        status: cancelling ? 'cancelled' : 'completed',
        completed_at: now.toISOString(),
        counts: tally,
      }),
    );
  }

  async forgetRecovery(jobId: string): Promise<void> {
    await this.updateIfStill(jobId, recoveryForgotten());
  }

  claimReenqueue(
    job: Pick<JobRecord, 'job_id' | 'enqueue_deadline'>,
    deadline: Date,
    now: Date,
  ): Promise<boolean> {
    // False when the job ended meanwhile, or another sweeper run took it first.
    return this.updateIfStill(
      job.job_id,
      reenqueueClaimed({
        previousDeadline: job.enqueue_deadline,
        deadline: deadline.toISOString(),
        now: now.toISOString(),
      }),
    );
  }

  async sendingLook(jobId: string): Promise<SendingLook> {
    const { Item } = await this.options.client.send(
      new GetCommand({
        TableName: this.options.tableName,
        Key: { job_id: jobId },
        ProjectionExpression: 'cancel_requested_at, active, #status, retries',
        ExpressionAttributeNames: { '#status': 'status' },
        ConsistentRead: true,
      }),
    );
    return {
      cancelled: Item?.cancel_requested_at !== undefined,
      // A scheduled job has not started; a job not found is left to the content's absence.
      ended: Item !== undefined && Item.active === undefined && Item.status !== 'scheduled',
      run: Number(Item?.retries ?? 0),
    };
  }

  requestCancel(jobId: string, now: Date): Promise<boolean> {
    return this.updateIfStill(jobId, cancelRequested(now.toISOString()));
  }

  async scheduledBefore(until: Date): Promise<JobRecord[]> {
    const items = await queryAll(this.options.client, {
      TableName: this.options.tableName,
      IndexName: INDEX.scheduledJobs,
      KeyConditionExpression: 'scheduled = :waiting AND send_at <= :until',
      ExpressionAttributeValues: { ':waiting': SCHEDULED_MARKER, ':until': until.toISOString() },
    });
    return items as unknown as JobRecord[];
  }

  startScheduled(jobId: string, enqueueDeadline: Date, now: Date): Promise<boolean> {
    return this.updateIfStill(
      jobId,
      scheduledJobStarted({ enqueueDeadline: enqueueDeadline.toISOString(), now: now.toISOString() }),
    );
  }

  cancelScheduled(job: JobRecord, now: Date): Promise<boolean> {
    const at = now.toISOString();
    return this.updateIfStill(
      job.job_id,
      scheduledJobCancelled({ totalEmails: job.total_emails, now: at }),
      jobEnded({
        job,
        status: 'cancelled',
        completed_at: at,
        counts: { sent: 0, failed: 0, suppressed: 0, cancelled: job.total_emails },
      }),
    );
  }

  /**
   * A conditional update of a job, with the event it makes true when there is one; false when its
   * condition failed (there is nothing left to do).
   */
  private updateIfStill(jobId: string, update: JobUpdate, event?: OutboxEvent): Promise<boolean> {
    return writeTelling(
      this.options.client,
      { Update: { TableName: this.options.tableName, Key: { job_id: jobId }, ...update } },
      this.options.outbox,
      event,
    );
  }
}
