import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { QuotaExceededError } from '../errors';

/**
 * Each API key may send to `limit` recipients per UTC day, cc copies included. A job's recipients
 * are counted when it is accepted, by one conditional update that succeeds only if they fit, so two
 * jobs at once can never together pass the limit; what a cancel kept from being sent is given back.
 */
export interface RecipientQuota {
  readonly limit: number;
  /** Counts `amount` recipients on the key's day of `now`; a `QuotaExceededError` when they do not fit. */
  charge(apiKeyId: string, amount: number, now: Date): Promise<{ day: string }>;
  /** Gives recipients back to the day they were counted on (never below 0). */
  refund(apiKeyId: string, day: string, amount: number): Promise<void>;
  /** Recipients counted on the key's day of `now`. */
  used(apiKeyId: string, now: Date): Promise<{ day: string; used: number }>;
}

/** The UTC day of a moment, `YYYY-MM-DD`: quotas reset at midnight UTC, as API Gateway's do. */
export const utcDay = (now: Date): string => now.toISOString().slice(0, 10);

/** The next midnight UTC after `now`: when the quota resets. */
export function nextReset(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
}

/** Whole seconds until the reset, for `Retry-After` (at least 1). */
export const secondsUntilReset = (now: Date): number =>
  Math.max(1, Math.ceil((nextReset(now).getTime() - now.getTime()) / 1000));

/** How long a day's count is kept after it: long enough to look back on a month. */
const KEEP_DAYS = 35;

export class DynamoRecipientQuota implements RecipientQuota {
  constructor(
    private readonly options: { client: DynamoDBDocumentClient; tableName: string; limit: number },
  ) {}

  get limit(): number {
    return this.options.limit;
  }

  async charge(apiKeyId: string, amount: number, now: Date): Promise<{ day: string }> {
    const day = utcDay(now);
    const { limit } = this.options;
    if (amount > limit) throw this.exceeded(amount, limit - (await this.used(apiKeyId, now)).used, now);
    try {
      await this.options.client.send(
        new UpdateCommand({
          TableName: this.options.tableName,
          Key: { api_key_id: apiKeyId, day },
          UpdateExpression: 'ADD recipients :amount SET expires_at = if_not_exists(expires_at, :expires)',
          ConditionExpression: 'attribute_not_exists(recipients) OR recipients <= :room',
          ExpressionAttributeValues: {
            ':amount': amount,
            ':room': limit - amount,
            ':expires': Math.floor(nextReset(now).getTime() / 1000) + KEEP_DAYS * 86_400,
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { day };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const used = Number((error.Item?.recipients as { N?: string } | undefined)?.N ?? limit);
      throw this.exceeded(amount, limit - used, now);
    }
  }

  async refund(apiKeyId: string, day: string, amount: number): Promise<void> {
    if (amount <= 0) return;
    try {
      await this.options.client.send(
        new UpdateCommand({
          TableName: this.options.tableName,
          Key: { api_key_id: apiKeyId, day },
          UpdateExpression: 'ADD recipients :refund',
          // Never below zero, and never an item for a day that counted nothing.
          ConditionExpression: 'recipients >= :amount',
          ExpressionAttributeValues: { ':refund': -amount, ':amount': amount },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  async used(apiKeyId: string, now: Date): Promise<{ day: string; used: number }> {
    const day = utcDay(now);
    const { Item } = await this.options.client.send(
      new GetCommand({
        TableName: this.options.tableName,
        Key: { api_key_id: apiKeyId, day },
        ConsistentRead: true,
      }),
    );
    return { day, used: Number(Item?.recipients ?? 0) };
  }

  private exceeded(requested: number, remaining: number, now: Date): QuotaExceededError {
    const { limit } = this.options;
    const left = Math.max(0, remaining);
    const resetsAt = nextReset(now);
    const message =
      requested > limit
        ? `This job has ${requested} recipients (cc copies included), more than the ${limit} this API key may send to in a day: split it into smaller jobs.`
        : `Recipient quota exceeded: this API key may send to ${left} more recipients today (of ${limit} per UTC day), and this job has ${requested} (cc copies included). The quota resets at ${resetsAt.toISOString()}.`;
    return new QuotaExceededError(message, {
      limit,
      remaining: left,
      requested,
      resets_at: resetsAt.toISOString(),
      retryAfterSeconds: secondsUntilReset(now),
    });
  }
}
