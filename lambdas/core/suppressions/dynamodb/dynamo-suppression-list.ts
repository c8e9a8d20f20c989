import { type DynamoDBDocumentClient, GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoAuditTrail } from '../../audit/dynamodb/dynamo-audit-trail';
import { INDEX } from '../../bindings';
import { mapConcurrently } from '../../concurrency';
import { decodeCursor, type Page, pageFrom } from '../../cursor';
import { batchGetAll } from '../../dynamo-paging';
import { writeAtomically } from '../../dynamo-writes';
import { ConflictError, NotFoundError } from '../../errors';
import type { EventOutbox } from '../../events/dynamodb/outbox';
import { recipientUnsubscribed } from '../../events/events';
import { storedEmailAddress } from '../../nonprofits/nonprofit';
import type { AddressKeys } from '../../people/address-keys';
import * as z from '../../zod';
import type { SuppressionList, SuppressionQuery } from '../repository';
import {
  describeLiftRule,
  type Lift,
  liftProblems,
  SUPPRESSION_REASONS,
  SUPPRESSION_SOURCES,
  type Suppression,
  type SuppressionReason,
} from '../suppression';

export interface DynamoSuppressionListOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Where an unsubscribe is told (`Recipient Unsubscribed`), with the suppression that records it. */
  outbox?: EventOutbox | undefined;
  /** Where each suppression added or lifted is recorded, in the same transaction (core/audit). */
  audit?: DynamoAuditTrail | undefined;
  /**
   * The address key, for the functions that let an address in (a registry entry, a cc) or lift an
   * erased one: an erased address is kept under its key alone (see `rememberErased`).
   */
  keys?: AddressKeys | undefined;
  now?: () => Date;
}

const reason = z.enum(SUPPRESSION_REASONS);
/** A record's key: an address, or an erased address's key (core/people/address-keys). */
const recordKey = z.union([storedEmailAddress, z.string().regex(/^erased:[0-9a-f]{64}$/)]);
const tableKey = z.strictObject({ email: recordKey });
const reasonIndexKey = (wanted: SuppressionReason) =>
  z.strictObject({ email: recordKey, reason: reason.refine((found) => found === wanted) });

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
const REASON_STRENGTH: readonly SuppressionReason[] = [
  'manual',
  'bounced',
  'unsubscribed',
  'complained',
  'erased',
];

const stronger = (reason: SuppressionReason, than: SuppressionReason) =>
  REASON_STRENGTH.indexOf(reason) > REASON_STRENGTH.indexOf(than);

/**
 * The condition of a write decided on a read: the record read is still there, unchanged (or there
 * is still none). A change in between fails it, and the caller reads again.
 */
function unchangedSince(read: Suppression | undefined) {
  if (!read) return { ConditionExpression: 'attribute_not_exists(email)' };
  return {
    ConditionExpression: '#reason = :readReason AND suppressed_at = :readAt',
    ExpressionAttributeNames: { '#reason': 'reason' },
    ExpressionAttributeValues: { ':readReason': read.reason, ':readAt': read.suppressed_at },
  };
}

const notSuppressed = (email: string) => new NotFoundError(`The address ${email} is not suppressed.`);

/** A record as an audit record keeps it: what it was, not who it was (the record names the address already). */
const previousOf = ({ email, ...kept }: Suppression) => kept;

export class DynamoSuppressionList implements SuppressionList {
  private readonly now: () => Date;

  constructor(private readonly options: DynamoSuppressionListOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Written over no record or a weaker reason (an address unsubscribed once is told once), with its
   * audit record and, for an unsubscribe, its event, in one transaction. The record is read first
   * and the write conditioned on it, so the audit record names what it replaced.
   */
  async add(
    entry: Omit<Suppression, 'suppressed_at'>,
  ): Promise<{ suppression: Suppression; created: boolean }> {
    // An erased address stays under its key alone: a link in an email sent before the erasure, a
    // late SES report or an operator's put finds it suppressed already, and stores nothing of it.
    const erased = entry.reason === 'erased' ? undefined : await this.erasedRecord(entry.email);
    if (erased) return { suppression: { ...erased, email: entry.email }, created: false };
    for (;;) {
      const previous = await this.get(entry.email);
      if (previous && !stronger(entry.reason, previous.reason))
        return { suppression: previous, created: false };
      const now = this.now();
      const suppression: Suppression = { ...entry, suppressed_at: now.toISOString() };
      const written = await writeAtomically(
        this.options.client,
        { Put: { TableName: this.options.tableName, Item: suppression, ...unchangedSince(previous) } },
        [
          entry.reason === 'unsubscribed'
            ? this.options.outbox?.put(recipientUnsubscribed(suppression), now)
            : undefined,
          this.options.audit?.put({
            action: 'suppression.added',
            email: entry.email,
            actor: {
              source: SUPPRESSION_SOURCES[entry.reason],
              api_key_id: entry.reason === 'manual' ? entry.api_key_id : undefined,
            },
            reason: entry.note,
            details: {
              reason: entry.reason,
              ...(entry.job_id ? { job_id: entry.job_id } : {}),
              ...(entry.api_key_id ? { api_key_id: entry.api_key_id } : {}),
              ...(previous ? { previous: previousOf(previous) } : {}),
            },
          }),
        ],
      );
      if (written) return { suppression, created: true };
      // Changed since the read (added, lifted or strengthened by another writer): decide again.
    }
  }

  async get(email: string): Promise<Suppression | undefined> {
    const { Item } = await this.options.client.send(
      new GetCommand({ TableName: this.options.tableName, Key: { email }, ConsistentRead: true }),
    );
    return Item ? toSuppression(Item) : undefined;
  }

  async lookUp(email: string): Promise<Suppression | undefined> {
    const own = await this.get(email);
    if (own) return own;
    const erased = await this.erasedRecord(email);
    return erased && { ...erased, email };
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

  /**
   * Reads the record, checks the lift against it (`LIFT_RULES`), and deletes it only while it is
   * still that record, with the audit record of the lift in the same transaction.
   */
  async remove(email: string, lift: Lift): Promise<Suppression> {
    for (;;) {
      const found = await this.get(email);
      if (!found) throw notSuppressed(email);
      const problems = liftProblems(found.reason, lift);
      if (problems.length > 0)
        throw new ConflictError(
          `The address ${email} is suppressed (${found.reason}, ${found.suppressed_at}); lifting it takes ${describeLiftRule(found.reason)}.`,
          problems,
        );
      const deleted = await writeAtomically(
        this.options.client,
        { Delete: { TableName: this.options.tableName, Key: { email }, ...unchangedSince(found) } },
        [
          // An erased address's consent renewed: the key that keeps it erased goes with it.
          found.reason === 'erased' ? await this.markerDelete(email) : undefined,
          this.options.audit?.put({
            action: 'suppression.lifted',
            email,
            actor: { source: 'api', api_key_id: lift.api_key_id },
            reason: lift.reason,
            details: { force: lift.force, previous: previousOf(found) },
          }),
        ],
      );
      if (deleted) return found;
    }
  }

  /** A record stamped with the time now, if it is still the one read (a put: the doors hold no update grant). */
  private async restamp(read: Suppression): Promise<void> {
    await writeAtomically(
      this.options.client,
      {
        Put: {
          TableName: this.options.tableName,
          Item: { ...read, suppressed_at: this.now().toISOString() },
          ...unchangedSince(read),
        },
      },
      [],
    );
  }

  private async markerDelete(email: string) {
    const { keys } = this.options;
    if (!keys) throw new Error('Lifting an erased address needs the address key');
    return { Delete: { TableName: this.options.tableName, Key: { email: await keys.erasedKeyOf(email) } } };
  }

  /** The record that keeps an address erased, when the function knows the key and one is there. */
  private async erasedRecord(email: string): Promise<Suppression | undefined> {
    const { keys } = this.options;
    return keys ? this.get(await keys.erasedKeyOf(email)) : undefined;
  }

  /**
   * The addresses among these that were erased, with their keys: one read per address (its key's
   * record), strongly consistent when asked (a door that stores the key in the address's place).
   */
  async erasedAmong(
    emails: readonly string[],
    { consistent = false }: { consistent?: boolean } = {},
  ): Promise<Map<string, string>> {
    const { keys } = this.options;
    if (!keys) throw new Error('Telling erased addresses needs the address key');
    const unique = [...new Set(emails)];
    if (unique.length === 0) return new Map();
    const byKey = new Map(
      await Promise.all(unique.map(async (email) => [await keys.erasedKeyOf(email), email] as const)),
    );
    const markers = await this.getMany([...byKey.keys()], { consistent });
    return new Map(
      [...markers.keys()].flatMap((key) => {
        const email = byKey.get(key);
        return email === undefined ? [] : [[email, key] as const];
      }),
    );
  }

  /**
   * Suppresses again, under the address itself, each of these addresses that was erased: called
   * where an address comes back in (a registry entry created or imported, a cc of a job), so that
   * what is sent to it is suppressed as before, though the address was not kept. One read per
   * address (its key's record); a write only for an erased one.
   */
  async rememberErased(emails: readonly string[]): Promise<string[]> {
    const erased = [...(await this.erasedAmong(emails)).keys()];
    // Recorded as any suppression is (audited), over a weaker record if there is one. An `erased`
    // record already there is the erasure's own, still running: it is stamped anew, so the
    // erasure's completion (which removes only the record it wrote) leaves it.
    await mapConcurrently(erased, 4, async (email) => {
      const { suppression, created } = await this.add({ email, reason: 'erased' });
      if (!created && suppression.reason === 'erased') await this.restamp(suppression);
    });
    return erased;
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
