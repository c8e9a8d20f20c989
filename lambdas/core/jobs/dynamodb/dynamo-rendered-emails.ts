import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { batchGetAll, batchPutAll } from '../../dynamo-paging';
import type { RenderedCopy, RenderedEmailStore } from '../rendered-emails';

export interface DynamoRenderedEmailsOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Days until DynamoDB's TTL removes a stored email (only writers need it). */
  retentionDays?: number;
  now?: () => Date;
}

const DAY_SECONDS = 86_400;

export class DynamoRenderedEmails implements RenderedEmailStore {
  constructor(private readonly options: DynamoRenderedEmailsOptions) {}

  async put(jobId: string, copies: readonly RenderedCopy[]): Promise<void> {
    const { retentionDays } = this.options;
    if (retentionDays === undefined) throw new Error('DynamoRenderedEmails needs retentionDays to store');
    const nowSeconds = Math.floor((this.options.now?.() ?? new Date()).getTime() / 1000);
    const expiresAt = nowSeconds + retentionDays * DAY_SECONDS;
    await batchPutAll(
      this.options.client,
      this.options.tableName,
      copies.map((copy) => ({ job_id: jobId, ...copy, expires_at: expiresAt })),
    );
  }

  async getMany(jobId: string, recipients: readonly string[]): Promise<Map<string, RenderedCopy>> {
    const keys = [...new Set(recipients)].map((recipient) => ({ job_id: jobId, recipient }));
    const nowSeconds = Math.floor((this.options.now?.() ?? new Date()).getTime() / 1000);
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
