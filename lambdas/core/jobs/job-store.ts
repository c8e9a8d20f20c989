import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { chunks, mapConcurrently } from '../concurrency';
import { decodeCursor, encodeCursor, type Page } from '../cursor';
import { queryAll } from '../dynamo-paging';
import { requireSetting } from '../env';
import { ConflictError, NotFoundError } from '../errors';
import type { JobContent, JobRecord, JobStatus } from './job';

/** Recipients per chunk item: 1,000 addresses of at most 254 characters stay under DynamoDB's 400 KB item limit. */
export const RECIPIENTS_PER_CHUNK = 1_000;
/**
 * The parts of a job in the contents table: part 0 is the content (template, subject, cc), part
 * n + 1 the n-th chunk of recipients.
 */
const CONTENT_PART = 0;
const chunkPart = (chunk: number) => chunk + 1;
/** How many index pages one listing request reads at most while a status filter skips items. */
const MAX_PAGES_PER_LISTING = 10;
const ACTIVE = 'yes';

export interface NewJob {
  job_id: string;
  api_key_id: string;
  template: string;
  subject: string | null;
  cc: string[];
  /** Sorted and unique: the order `GET /jobs/{id}/emails` lists them in. */
  recipients: string[];
  request_hash: string;
  idempotency_key?: string;
  created_at: string;
}

export interface JobQuery {
  status?: JobStatus | undefined;
  limit: number;
  cursor?: string | undefined;
}

/** The port for jobs, their content and their recipient lists. */
export interface JobStore {
  /** Records the content and the recipients, then the job: a job that exists always has all of them. */
  create(job: NewJob): Promise<{ job: JobRecord; created: boolean }>;
  get(jobId: string): Promise<JobRecord | undefined>;
  content(jobId: string): Promise<JobContent | undefined>;
  listForKey(apiKeyId: string, query: JobQuery): Promise<Page<JobRecord>>;
  /** `count` recipients from `offset`, in the job's (sorted) order. */
  recipients(jobId: string, offset: number, count: number): Promise<string[]>;
  allRecipients(jobId: string): Promise<string[]>;
  activeJobs(): Promise<JobRecord[]>;
  /** Notes that the sweeper acted on a job, so it waits a full period before acting again. */
  touch(jobId: string, at: Date): Promise<void>;
}

export interface DynamoJobStoreOptions {
  client: DynamoDBDocumentClient;
  jobsTable: string;
  /** Needed by the operations on content and recipients only. */
  contentsTable?: string | undefined;
  /** Needed by `listForKey` only. */
  byApiKeyIndex?: string | undefined;
  /** Needed by `activeJobs` only. */
  activeIndex?: string | undefined;
}

export class DynamoJobStore implements JobStore {
  constructor(private readonly options: DynamoJobStoreOptions) {}

  async create(input: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    const { client, jobsTable } = this.options;
    const contentsTable = requireSetting('contentsTable', this.options.contentsTable);
    const { recipients, template, subject, cc, ...fields } = input;
    const parts = [
      { part: CONTENT_PART, template, subject, cc, accepted_at: input.created_at },
      ...chunks(recipients, RECIPIENTS_PER_CHUNK).map((chunk, index) => ({
        part: chunkPart(index),
        recipients: chunk,
      })),
    ];
    // A part of another request under the same job id (an Idempotency-Key reused with another body
    // at the same moment) is never overwritten: the condition ties each part to its request.
    await mapConcurrently(parts, 4, async (part) => {
      try {
        await client.send(
          new PutCommand({
            TableName: contentsTable,
            Item: { job_id: input.job_id, ...part, request_hash: input.request_hash },
            ConditionExpression: 'attribute_not_exists(job_id) OR request_hash = :hash',
            ExpressionAttributeValues: { ':hash': input.request_hash },
          }),
        );
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) {
          throw new ConflictError('The Idempotency-Key was used for a different request.');
        }
        throw error;
      }
    });
    const job: JobRecord = {
      ...fields,
      status: 'queued',
      total_emails: recipients.length,
      sent: 0,
      failed: 0,
      remaining: recipients.length,
      updated_at: input.created_at,
      active: ACTIVE,
    };
    try {
      await client.send(
        new PutCommand({
          TableName: jobsTable,
          Item: job,
          ConditionExpression: 'attribute_not_exists(job_id)',
        }),
      );
      return { job, created: true };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const existing = await this.get(input.job_id);
      if (!existing) throw error;
      return { job: existing, created: false };
    }
  }

  async content(jobId: string): Promise<JobContent | undefined> {
    const { Item } = await this.options.client.send(
      new GetCommand({
        TableName: requireSetting('contentsTable', this.options.contentsTable),
        Key: { job_id: jobId, part: CONTENT_PART },
        ProjectionExpression: 'template, subject, cc, accepted_at',
        ConsistentRead: true,
      }),
    );
    if (!Item) return undefined;
    return {
      template: String(Item.template),
      subject: (Item.subject as string | null) ?? null,
      cc: (Item.cc as string[]) ?? [],
      accepted_at: String(Item.accepted_at),
    };
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const { Item } = await this.options.client.send(
      new GetCommand({ TableName: this.options.jobsTable, Key: { job_id: jobId }, ConsistentRead: true }),
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
        TableName: this.options.jobsTable,
        IndexName: requireSetting('byApiKeyIndex', this.options.byApiKeyIndex),
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

  async recipients(jobId: string, offset: number, count: number): Promise<string[]> {
    if (count <= 0) return [];
    const first = Math.floor(offset / RECIPIENTS_PER_CHUNK);
    const last = Math.floor((offset + count - 1) / RECIPIENTS_PER_CHUNK);
    const all = await this.readChunks(jobId, { first: chunkPart(first), last: chunkPart(last) });
    return all.slice(offset - first * RECIPIENTS_PER_CHUNK, offset - first * RECIPIENTS_PER_CHUNK + count);
  }

  allRecipients(jobId: string): Promise<string[]> {
    return this.readChunks(jobId, { first: chunkPart(0), last: Number.MAX_SAFE_INTEGER });
  }

  async activeJobs(): Promise<JobRecord[]> {
    const items = await queryAll(this.options.client, {
      TableName: this.options.jobsTable,
      IndexName: requireSetting('activeIndex', this.options.activeIndex),
      KeyConditionExpression: 'active = :active',
      ExpressionAttributeValues: { ':active': ACTIVE },
    });
    return items as unknown as JobRecord[];
  }

  async touch(jobId: string, at: Date): Promise<void> {
    try {
      await this.options.client.send(
        new UpdateCommand({
          TableName: this.options.jobsTable,
          Key: { job_id: jobId },
          UpdateExpression: 'SET updated_at = :now',
          ConditionExpression: 'attribute_exists(active)',
          ExpressionAttributeValues: { ':now': at.toISOString() },
        }),
      );
    } catch (error) {
      // The job ended meanwhile: nothing to note.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /** Recipients of the chunk parts in a range, in order. */
  private async readChunks(jobId: string, range: { first: number; last: number }): Promise<string[]> {
    const parts = await queryAll(this.options.client, {
      TableName: requireSetting('contentsTable', this.options.contentsTable),
      KeyConditionExpression: 'job_id = :job AND part BETWEEN :first AND :last',
      ExpressionAttributeValues: { ':job': jobId, ':first': range.first, ':last': range.last },
      ProjectionExpression: 'recipients',
      ConsistentRead: true,
    });
    return parts.flatMap((part) => part.recipients as string[]);
  }
}

/** A job as its owner sees it: another API key's job answers exactly as an absent one. */
export async function findOwnedJob(
  jobs: Pick<JobStore, 'get'>,
  jobId: string,
  apiKeyId: string,
): Promise<JobRecord> {
  const job = await jobs.get(jobId);
  if (!job || job.api_key_id !== apiKeyId) throw new NotFoundError(`Job ${jobId} not found.`);
  return job;
}
