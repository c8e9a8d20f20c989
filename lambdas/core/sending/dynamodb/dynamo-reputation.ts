import { type DynamoDBDocumentClient, GetCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import type { DynamoAuditTrail } from '../../audit/dynamodb/dynamo-audit-trail';
import { batchGetAll } from '../../dynamo-paging';
import { type RecordPut, writeAtomically } from '../../dynamo-writes';
import type { EventOutbox } from '../../events/dynamodb/outbox';
import { type OutboxEvent, sendingPaused, sendingResumed } from '../../events/events';
import {
  type GuardRecord,
  type GuardStore,
  REPUTATION_SHARDS,
  RESUMED_OUTSIDE,
  type ReputationCounts,
  type ReputationWindow,
  reputationHour,
  reputationShard,
} from '../reputation';

// The window's hourly counts and the guard's record live in the jobs table, under keys no job id
// takes (a job id is a UUID): `reputation#<hour>#<shard>` and `sending#guard`. They carry neither
// `api_key_id` nor `active`, so no index of jobs shows them.

/** An hour's counts are kept two days: a window reads at most 48 hours back. */
const HOUR_RETENTION_SECONDS = 2 * 24 * 3600 + 3600;
const GUARD_KEY = 'sending#guard';

export const reputationKey = (hour: string, shard: number) => `reputation#${hour}#${shard}`;

/**
 * The write that adds to the window, for a transaction of the outcome counter (`sent`) or of the
 * feedback consumer (`bounced`, `complained`): it lands with the count it belongs to, or not at all.
 */
export function reputationAdded(jobsTable: string, counter: keyof ReputationCounts, count: number, at: Date) {
  return {
    Update: {
      TableName: jobsTable,
      Key: { job_id: reputationKey(reputationHour(at), reputationShard()) },
      UpdateExpression: 'ADD #counter :count SET expires_at = if_not_exists(expires_at, :expires)',
      ExpressionAttributeNames: { '#counter': counter },
      ExpressionAttributeValues: {
        ':count': count,
        ':expires': Math.floor(at.getTime() / 1000) + HOUR_RETENTION_SECONDS,
      },
    },
  };
}

export class DynamoReputationWindow implements ReputationWindow {
  /** `consistent`: the guard reads what was just counted (the bounce that tips it), at twice the read cost. */
  constructor(
    private readonly options: { client: DynamoDBDocumentClient; jobsTable: string; consistent?: boolean },
  ) {}

  async counts(hours: readonly string[]): Promise<ReputationCounts> {
    const keys = hours.flatMap((hour) =>
      Array.from({ length: REPUTATION_SHARDS }, (_, shard) => ({ job_id: reputationKey(hour, shard) })),
    );
    const items = await batchGetAll(this.options.client, this.options.jobsTable, keys, {
      consistent: this.options.consistent ?? false,
    });
    const total = { sent: 0, bounced: 0, complained: 0 };
    for (const item of items)
      for (const counter of ['sent', 'bounced', 'complained'] as const)
        total[counter] += Number(item[counter] ?? 0);
    return total;
  }
}

export class DynamoGuardStore implements GuardStore {
  constructor(
    private readonly options: {
      client: DynamoDBDocumentClient;
      jobsTable: string;
      /** Where a pause and a resume are told (`Sending Paused`, `Sending Resumed`), with the record's change. */
      outbox?: EventOutbox | undefined;
      /** Where a pause and a resume are recorded, in the same transaction (core/audit). */
      audit?: DynamoAuditTrail | undefined;
    },
  ) {}

  async get(): Promise<GuardRecord | undefined> {
    const { Item } = await this.options.client.send(
      new GetCommand({ TableName: this.options.jobsTable, Key: { job_id: GUARD_KEY }, ConsistentRead: true }),
    );
    if (!Item) return undefined;
    const { job_id: _key, ...record } = Item;
    return record as GuardRecord;
  }

  async pause(
    record: Required<Pick<GuardRecord, 'paused_at' | 'reason' | 'window'>>,
    seen: GuardRecord | undefined,
  ): Promise<boolean> {
    const audited = this.options.audit?.put({
      action: 'sending.paused',
      actor: { source: 'reputation_guard' },
      reason: record.reason,
      details: { window: record.window },
    });
    return this.conditionally(sendingPaused(record), audited, {
      UpdateExpression:
        'SET paused = :yes, switched = :no, paused_at = :at, reason = :reason, #window = :window',
      // Not paused, and not resumed since the record was read.
      ConditionExpression: `(attribute_not_exists(paused) OR paused = :no) AND ${
        seen?.resumed_at ? 'resumed_at = :seen' : 'attribute_not_exists(resumed_at)'
      }`,
      ExpressionAttributeNames: { '#window': 'window' },
      ExpressionAttributeValues: {
        ':yes': true,
        ':no': false,
        ':at': record.paused_at,
        ':reason': record.reason,
        ':window': record.window,
        ...(seen?.resumed_at ? { ':seen': seen.resumed_at } : {}),
      },
    });
  }

  async switched(pausedAt: string): Promise<void> {
    await this.conditionally(undefined, undefined, {
      UpdateExpression: 'SET switched = :yes',
      ConditionExpression: 'paused_at = :at',
      ExpressionAttributeValues: { ':yes': true, ':at': pausedAt },
    });
  }

  async resume(
    record: Required<Pick<GuardRecord, 'resumed_at' | 'resumed_by' | 'resume_reason' | 'baseline'>>,
    seen: GuardRecord | undefined,
  ): Promise<boolean> {
    const outside = record.resumed_by === RESUMED_OUTSIDE;
    const audited = this.options.audit?.put({
      action: 'sending.resumed',
      actor: outside ? { source: 'outside_api' } : { source: 'api', api_key_id: record.resumed_by },
      reason: record.resume_reason,
      ...(seen?.paused_at ? { details: { paused_at: seen.paused_at, paused_for: seen.reason } } : {}),
    });
    return this.conditionally(sendingResumed(record), audited, {
      UpdateExpression:
        'SET paused = :no, resumed_at = :at, resumed_by = :by, resume_reason = :reason, baseline = :baseline',
      // The pause that was read (or none): a pause recorded since is looked at before it is lifted.
      ConditionExpression: seen?.paused_at ? 'paused_at = :seen' : 'attribute_not_exists(paused_at)',
      ExpressionAttributeValues: {
        ':no': false,
        ':at': record.resumed_at,
        ':by': record.resumed_by,
        ':reason': record.resume_reason,
        ':baseline': record.baseline,
        ...(seen?.paused_at ? { ':seen': seen.paused_at } : {}),
      },
    });
  }

  /** An update of the record, with the event it makes true and its audit record; false when its condition failed. */
  private conditionally(
    event: OutboxEvent | undefined,
    audited: RecordPut | undefined,
    update: Omit<UpdateCommandInput, 'TableName' | 'Key'> & {
      UpdateExpression: string;
      ConditionExpression: string;
    },
  ): Promise<boolean> {
    return writeAtomically(
      this.options.client,
      { Update: { TableName: this.options.jobsTable, Key: { job_id: GUARD_KEY }, ...update } },
      [event ? this.options.outbox?.put(event) : undefined, audited],
    );
  }
}
