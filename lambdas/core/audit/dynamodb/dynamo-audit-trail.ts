import { randomUUID } from 'node:crypto';
import { type DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { INDEX } from '../../bindings';
import { decodeCursor, encodeCursor, type Page } from '../../cursor';
import type { RecordPut } from '../../dynamo-writes';
import { expiresAfter } from '../../ttl';
import * as z from '../../zod';
import type { AuditEntry, AuditQuery, AuditRecord, AuditTrailReader, AuditTrailWriter } from '../audit';

export interface DynamoAuditTrailOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Days a record is kept before DynamoDB's TTL removes it (the stack's `auditRetentionDays`). */
  retentionDays: number;
  now?: () => Date;
}

/**
 * Every record is in one partition (`trail`), sorted by `entry` (`<time>#<id>`), so the newest
 * come first in one Query; an index by address and one by action serve those filters. One
 * partition takes about 1,000 writes a second, far above what changes to the registry and the
 * suppression list make (CAPACITY.md).
 */
const TRAIL = 'audit';

/** Sorts after every id character: an `until` of a time takes every record of that time. */
const AFTER_ANY_ID = '~';

/** A record's sort key: its time in UTC (`toISOString`, years to 9999) and its id. */
const cursorKey = z.strictObject({
  entry: z
    .string()
    .regex(
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z#[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    ),
});

function toRecord(item: Record<string, unknown>): AuditRecord {
  const { id, at, action, email, actor, reason, details } = item as unknown as AuditRecord;
  return {
    id,
    at,
    action,
    ...(email ? { email } : {}),
    actor,
    ...(reason ? { reason } : {}),
    ...(details ? { details } : {}),
  };
}

export class DynamoAuditTrail implements AuditTrailWriter {
  private readonly now: () => Date;

  constructor(private readonly options: DynamoAuditTrailOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /**
   * The write of a record, for the transaction of the change it records. Its key is new, and the
   * condition says so: a record is only ever added.
   */
  put(entry: AuditEntry): RecordPut {
    const at = this.now();
    const id = randomUUID();
    const item = {
      trail: TRAIL,
      entry: `${at.toISOString()}#${id}`,
      id,
      at: at.toISOString(),
      action: entry.action,
      ...(entry.email ? { email: entry.email } : {}),
      actor: {
        source: entry.actor.source,
        ...(entry.actor.api_key_id ? { api_key_id: entry.actor.api_key_id } : {}),
      },
      ...(entry.reason ? { reason: entry.reason } : {}),
      ...(entry.details ? { details: entry.details } : {}),
      expires_at: expiresAfter(at, this.options.retentionDays),
    };
    return {
      Put: {
        TableName: this.options.tableName,
        Item: item,
        ConditionExpression: 'attribute_not_exists(entry)',
      },
    };
  }

  /** Adds a record on its own: for a change made of many writes (an import), once it is done. */
  async append(entry: AuditEntry): Promise<void> {
    await this.options.client.send(new PutCommand(this.put(entry).Put));
  }
}

/** The trail as `GET /audit` reads it. */
export class DynamoAuditReader implements AuditTrailReader {
  constructor(private readonly options: { client: DynamoDBDocumentClient; tableName: string }) {}

  /**
   * Records newest first: by address or by action on their index, else the whole trail; a time
   * range is the sort key's. An action with an address is filtered on the address's records (a
   * few), so a page may take more than one read: reads go on until the page is full or the range
   * ends. The cursor is the last record's sort key: the next page reads below it.
   */
  async list(query: AuditQuery): Promise<Page<AuditRecord>> {
    const scope = `audit:${query.action ?? ''}:${query.email ?? ''}:${query.since ?? ''}:${query.until ?? ''}`;
    const below = query.cursor === undefined ? undefined : decodeCursor(query.cursor, scope, cursorKey).entry;
    const lower = query.since === undefined ? '0' : new Date(query.since).toISOString();
    const until =
      query.until === undefined ? AFTER_ANY_ID : `${new Date(query.until).toISOString()}${AFTER_ANY_ID}`;
    // Never past `until`, whatever a cursor made by hand says; one below `since` has nothing after it.
    const upper = below !== undefined && below < until ? below : until;
    if (upper < lower) return { items: [], nextCursor: null };
    const [index, keyName, keyValue] =
      query.email !== undefined
        ? [INDEX.auditByEmail, 'email', query.email]
        : query.action !== undefined
          ? [INDEX.auditByAction, 'action', query.action]
          : [undefined, 'trail', TRAIL];
    const filterAction = query.email !== undefined && query.action !== undefined;
    // Past its retention a record is gone, though DynamoDB's TTL may take days to remove it.
    const filter = `expires_at > :now${filterAction ? ' AND #action = :action' : ''}`;
    const found: AuditRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.options.client.send(
        new QueryCommand({
          TableName: this.options.tableName,
          ...(index ? { IndexName: index } : {}),
          KeyConditionExpression: '#key = :key AND entry BETWEEN :lower AND :upper',
          FilterExpression: filter,
          ExpressionAttributeNames: { '#key': keyName, ...(filterAction ? { '#action': 'action' } : {}) },
          ExpressionAttributeValues: {
            ':key': keyValue,
            ':lower': lower,
            ':upper': upper,
            ':now': Math.floor(Date.now() / 1000),
            ...(filterAction ? { ':action': query.action } : {}),
          },
          ScanIndexForward: false,
          // One more than the page (and the cursor's own record, which BETWEEN includes) tells the last page.
          Limit: query.limit + 2 - found.length,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) if (item.entry !== below) found.push(toRecord(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined && found.length <= query.limit);
    const items = found.slice(0, query.limit);
    const last = items.at(-1);
    const more = found.length > query.limit;
    return {
      items,
      nextCursor: more && last ? encodeCursor({ entry: `${last.at}#${last.id}` }, scope) : null,
    };
  }
}
