import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import { INDEX } from '../../bindings';
import { decodeCursor, type Page, pageFrom } from '../../cursor';
import { batchGetAll } from '../../dynamo-paging';
import { ConflictError, NotFoundError } from '../../errors';
import { type EventOutbox, writeTelling } from '../../events/dynamodb/outbox';
import { recipientUnsubscribed } from '../../events/events';
import { emailAddress } from '../../nonprofits/nonprofit';
import * as z from '../../zod';
import type { SuppressionList, SuppressionQuery } from '../repository';
import { SUPPRESSION_REASONS, type Suppression, type SuppressionReason } from '../suppression';

export interface DynamoSuppressionListOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Where an unsubscribe is told (`Recipient Unsubscribed`), with the suppression that records it. */
  outbox?: EventOutbox | undefined;
  now?: () => Date;
}

const reason = z.enum(SUPPRESSION_REASONS);
const tableKey = z.strictObject({ email: emailAddress });
const reasonIndexKey = (wanted: SuppressionReason) =>
  z.strictObject({ email: emailAddress, reason: reason.refine((found) => found === wanted) });

function toSuppression(item: Record<string, unknown>): Suppression {
  const { email, reason, suppressed_at, job_id, api_key_id, note } = item as unknown as Suppression;
  return {
    email,
    reason,
    suppressed_at,
    ...(job_id ? { job_id } : {}),
    ...(api_key_id ? { api_key_id } : {}),
    ...(note ? { note } : {}),
  };
}

/** Weakest first: a reason replaces a record of any reason before it. */
const REASON_STRENGTH: readonly SuppressionReason[] = ['manual', 'bounced', 'unsubscribed', 'complained'];

/** The condition under which a suppression for `reason` is written: no record, or a weaker one. */
function replaceableBy(reason: SuppressionReason) {
  const weaker = REASON_STRENGTH.slice(0, REASON_STRENGTH.indexOf(reason));
  if (weaker.length === 0) return { ConditionExpression: 'attribute_not_exists(email)' };
  return {
    ConditionExpression: `attribute_not_exists(email) OR #reason IN (${weaker.map((_, n) => `:weaker${n}`).join(', ')})`,
    ExpressionAttributeNames: { '#reason': 'reason' },
    ExpressionAttributeValues: Object.fromEntries(weaker.map((weak, n) => [`:weaker${n}`, weak])),
  };
}

const notSuppressed = (email: string) => new NotFoundError(`The address ${email} is not suppressed.`);

export class DynamoSuppressionList implements SuppressionList {
  private readonly now: () => Date;

  constructor(private readonly options: DynamoSuppressionListOptions) {
    this.now = options.now ?? (() => new Date());
  }

  async add(
    entry: Omit<Suppression, 'suppressed_at'>,
  ): Promise<{ suppression: Suppression; created: boolean }> {
    const suppression: Suppression = { ...entry, suppressed_at: this.now().toISOString() };
    // Written only over no record or a weaker reason: an address unsubscribed once is told once.
    const written = await writeTelling(
      this.options.client,
      { Put: { TableName: this.options.tableName, Item: suppression, ...replaceableBy(entry.reason) } },
      this.options.outbox,
      entry.reason === 'unsubscribed' ? recipientUnsubscribed(suppression) : undefined,
    );
    if (written) return { suppression, created: true };
    const kept = await this.get(entry.email);
    // Lifted in between: suppress again, as asked.
    if (!kept) return this.add(entry);
    return { suppression: kept, created: false };
  }

  async get(email: string): Promise<Suppression | undefined> {
    const { Item } = await this.options.client.send(
      new GetCommand({ TableName: this.options.tableName, Key: { email }, ConsistentRead: true }),
    );
    return Item ? toSuppression(Item) : undefined;
  }

  async getMany(
    emails: readonly string[],
    { consistent = true }: { consistent?: boolean } = {},
  ): Promise<Map<string, Suppression>> {
    if (emails.length === 0) return new Map();
    const keys = [...new Set(emails)].map((email) => ({ email }));
    const items = await batchGetAll(this.options.client, this.options.tableName, keys, { consistent });
    return new Map(items.map((item) => [String(item.email), toSuppression(item)]));
  }

  async remove(email: string, { force }: { force: boolean }): Promise<Suppression> {
    try {
      const { Attributes } = await this.options.client.send(
        new DeleteCommand({
          TableName: this.options.tableName,
          Key: { email },
          ...(force
            ? { ConditionExpression: 'attribute_exists(email)' }
            : {
                ConditionExpression: 'attribute_exists(email) AND #reason <> :complained',
                ExpressionAttributeNames: { '#reason': 'reason' },
                ExpressionAttributeValues: { ':complained': 'complained' },
              }),
          ReturnValues: 'ALL_OLD',
        }),
      );
      return toSuppression(Attributes ?? {});
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const found = await this.get(email);
      if (!found) throw notSuppressed(email);
      throw new ConflictError(
        `The address ${email} complained about an email (${found.suppressed_at}); lift it only with force=true and a reason.`,
      );
    }
  }

  /** Like the registry's listing: a reason is a Query on its index, everything a Scan; one item more tells the last page. */
  async list({ reason: wanted, limit, cursor }: SuppressionQuery): Promise<Page<Suppression>> {
    const scope = wanted === undefined ? 'suppressions' : `suppressions:${wanted}`;
    const startKey =
      cursor === undefined
        ? undefined
        : decodeCursor(cursor, scope, wanted === undefined ? tableKey : reasonIndexKey(wanted));
    const page = await this.options.client.send(
      wanted === undefined
        ? new ScanCommand({
            TableName: this.options.tableName,
            Limit: limit + 1,
            ExclusiveStartKey: startKey,
          })
        : new QueryCommand({
            TableName: this.options.tableName,
            IndexName: INDEX.suppressionsByReason,
            KeyConditionExpression: '#reason = :reason',
            ExpressionAttributeNames: { '#reason': 'reason' },
            ExpressionAttributeValues: { ':reason': wanted },
            Limit: limit + 1,
            ExclusiveStartKey: startKey,
          }),
    );
    return pageFrom((page.Items ?? []).map(toSuppression), limit, page.LastEvaluatedKey, {
      key: (item) =>
        wanted === undefined ? { email: item.email } : { email: item.email, reason: item.reason },
      scope,
    });
  }
}
