import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { chunks, mapConcurrently } from '../../concurrency';
import { queryAll } from '../../dynamo-paging';
import { ConflictError } from '../../errors';
import { expiresAfter, isExpired } from '../../ttl';
import type { JobContent } from '../job';
import type { JobContentStore, NewJobContent } from '../job-store';

/** Recipients per chunk item: 1,000 addresses of at most 254 characters stay under DynamoDB's 400 KB item limit. */
export const RECIPIENTS_PER_CHUNK = 1_000;
/**
 * The parts of a job in the contents table: part 0 is the content (templates, subject, cc), part
 * n + 1 the n-th chunk of recipients.
 */
const CONTENT_PART = 0;
const chunkPart = (chunk: number) => chunk + 1;

/** The job contents table: a job's template, subject and cc (part 0) and its sorted recipients in chunks. */
export class DynamoJobContents implements JobContentStore {
  constructor(
    private readonly options: {
      client: DynamoDBDocumentClient;
      tableName: string;
      /** Days the parts are kept from the job's start (`ledgerRetentionDays`); only the writer sets it. */
      retentionDays?: number | undefined;
    },
  ) {}

  async put({ job_id, recipients, request_hash, starts_at, ...content }: NewJobContent): Promise<void> {
    const days = this.options.retentionDays;
    const expiry =
      days === undefined ? {} : { expires_at: expiresAfter(starts_at ?? content.accepted_at, days) };
    const parts = [
      { part: CONTENT_PART, ...content },
      ...chunks(recipients, RECIPIENTS_PER_CHUNK).map((chunk, index) => ({
        part: chunkPart(index),
        recipients: chunk,
      })),
    ];
    // A part of another request under the same job id (an Idempotency-Key reused with another body
    // at the same moment) is never overwritten: the condition ties each part to its request.
    await mapConcurrently(parts, 4, async (part) => {
      try {
        await this.options.client.send(
          new PutCommand({
            TableName: this.options.tableName,
            Item: { job_id, ...part, request_hash, ...expiry },
            ConditionExpression: 'attribute_not_exists(job_id) OR request_hash = :hash',
            ExpressionAttributeValues: { ':hash': request_hash },
          }),
        );
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) {
          throw new ConflictError('The Idempotency-Key was used for a different request.');
        }
        throw error;
      }
    });
  }

  async content(jobId: string): Promise<JobContent | undefined> {
    const { Item } = await this.options.client.send(
      new GetCommand({
        TableName: this.options.tableName,
        Key: { job_id: jobId, part: CONTENT_PART },
        ProjectionExpression: 'template, html, subject, cc, accepted_at, quota, delivery_shards, expires_at',
        ConsistentRead: true,
      }),
    );
    // Past its retention it is gone, though DynamoDB's TTL may take days to remove it.
    if (!Item || isExpired(Item.expires_at)) return undefined;
    return {
      template: String(Item.template),
      html: typeof Item.html === 'string' ? Item.html : null,
      subject: (Item.subject as string | null) ?? null,
      cc: (Item.cc as string[]) ?? [],
      accepted_at: String(Item.accepted_at),
      ...(Item.quota ? { quota: Item.quota as JobContent['quota'] } : {}),
      ...(Number.isInteger(Item.delivery_shards) && Number(Item.delivery_shards) > 1
        ? { delivery_shards: Number(Item.delivery_shards) }
        : {}),
    };
  }

  async subject(jobId: string): Promise<string | null> {
    const { Item } = await this.options.client.send(
      new GetCommand({
        TableName: this.options.tableName,
        Key: { job_id: jobId, part: CONTENT_PART },
        // Its subject only, eventually consistent: a job's content never changes once written.
        ProjectionExpression: 'subject, expires_at',
      }),
    );
    if (!Item || isExpired(Item.expires_at)) return null;
    return typeof Item.subject === 'string' ? Item.subject : null;
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

  /** Recipients of the chunk parts in a range, in order. */
  private async readChunks(jobId: string, range: { first: number; last: number }): Promise<string[]> {
    const parts = await queryAll(this.options.client, {
      TableName: this.options.tableName,
      KeyConditionExpression: 'job_id = :job AND part BETWEEN :first AND :last',
      ExpressionAttributeValues: { ':job': jobId, ':first': range.first, ':last': range.last },
      ProjectionExpression: 'recipients',
      ConsistentRead: true,
    });
    return parts.flatMap((part) => part.recipients as string[]);
  }
}
