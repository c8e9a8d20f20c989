import { type DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { batchGetAll } from '../../dynamo-paging';
import type { RenderedCopy, RenderedEmailStore, RenderSnapshot, SnapshotValues } from '../rendered-emails';

export interface DynamoRenderedEmailsOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Days until DynamoDB's TTL removes a stored email (only writers need it). */
  retentionDays?: number;
  now?: () => Date;
}

const DAY_SECONDS = 86_400;
/**
 * Snapshots share the table with the emails stored whole before them, under a sort key no address
 * can take (an address has an `@`).
 */
const SNAPSHOT_PREFIX = 'snapshot#';
const snapshotKey = (id: string) => `${SNAPSHOT_PREFIX}${id}`;

export class DynamoRenderedEmails implements RenderedEmailStore {
  constructor(private readonly options: DynamoRenderedEmailsOptions) {}

  async putSnapshot(jobId: string, snapshot: RenderSnapshot): Promise<void> {
    const { retentionDays } = this.options;
    if (retentionDays === undefined) throw new Error('DynamoRenderedEmails needs retentionDays to store');
    await this.options.client.send(
      new PutCommand({
        TableName: this.options.tableName,
        Item: {
          job_id: jobId,
          recipient: snapshotKey(snapshot.id),
          nonprofits: snapshot.nonprofits,
          expires_at: this.nowSeconds() + retentionDays * DAY_SECONDS,
        },
      }),
    );
  }

  async getSnapshots(jobId: string, ids: readonly string[]): Promise<Map<string, RenderSnapshot>> {
    const keys = [...new Set(ids)].map((id) => ({ job_id: jobId, recipient: snapshotKey(id) }));
    const now = this.nowSeconds();
    const items = await batchGetAll(this.options.client, this.options.tableName, keys);
    return new Map(
      items
        .filter((item) => Number(item.expires_at) > now)
        .map((item) => {
          const id = String(item.recipient).slice(SNAPSHOT_PREFIX.length);
          return [id, { id, nonprofits: item.nonprofits as Record<string, SnapshotValues> }];
        }),
    );
  }

  private nowSeconds(): number {
    return Math.floor((this.options.now?.() ?? new Date()).getTime() / 1000);
  }

  async getMany(jobId: string, recipients: readonly string[]): Promise<Map<string, RenderedCopy>> {
    const keys = [...new Set(recipients)].map((recipient) => ({ job_id: jobId, recipient }));
    const nowSeconds = this.nowSeconds();
    const items = await batchGetAll(this.options.client, this.options.tableName, keys);
    // TTL removes expired items within days, not at once: one past its time is treated as gone.
    return new Map(
      items
        .filter((item) => Number(item.expires_at) > nowSeconds)
        .map((item) => [
          String(item.recipient),
          {
            recipient: String(item.recipient),
            subject: String(item.subject),
            body: String(item.body),
            ...(typeof item.html === 'string' ? { html: item.html } : {}),
          },
        ]),
    );
  }
}
