import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { QuotaExceededError } from '../../errors';
import { nextReset, type RecipientQuota, secondsUntilReset, utcDay } from '../recipient-quota';

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
