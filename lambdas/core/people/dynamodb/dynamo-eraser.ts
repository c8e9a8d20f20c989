import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { AUDIT_REWRITABLE } from '../../audit/audit';
import { mapConcurrently } from '../../concurrency';
import { batchDeleteAll, queryAll, scanSegmentStep } from '../../dynamo-paging';
import { deliveryPartition, jobOfDeliveryPartition } from '../../jobs/deliveries';
import type { JobContentStore } from '../../jobs/job-store';
import { STREAM_COUNTED } from '../../jobs/outcome-counts';
import { mentions, replaceMentions } from '../erase-mentions';
import type { Eraser, ErasureTable, SegmentPosition } from '../person-requests';

type Item = Record<string, unknown>;

/** Items of a page erased at once. */
const CONCURRENT_ERASURES = 10;

export interface DynamoEraserOptions {
  client: DynamoDBDocumentClient;
  /** The tables an erasure walks, by name; the rendered emails' only where the stack keeps them. */
  tables: Partial<Record<ErasureTable, string>>;
  /** How many partition keys a job's deliveries are spread over (its content's `delivery_shards`). */
  contents: Pick<JobContentStore, 'content'>;
  /** Items a Scan page reads (unset: 1 MB); tests set it low to walk in many steps. */
  pageSize?: number | undefined;
}

/** Attempts at rewriting an item that keeps changing under the erasure (each a fresh read). */
const REWRITE_ATTEMPTS = 5;

/**
 * Attributes a writer may add to a delivery after an erasure read it: the claim, the outcome and its
 * message id, cc copies, SES reports, the counter's mark. Moving it requires them still absent.
 */
const LATER_DELIVERY_ATTRIBUTES = [
  'status',
  'message_id',
  'claim_token',
  'lease_until',
  'handed_over_at',
  'copy_ids',
  'copy_errors',
  'feedback',
  'feedback_ids',
  STREAM_COUNTED,
] as const;

/** A value as DynamoDB compares it: sets by their members. */
const canonical = (value: unknown) =>
  JSON.stringify(value, (_name, inner) => (inner instanceof Set ? [...inner].sort() : inner));

const pick = (item: Item, names: readonly string[]) =>
  Object.fromEntries(names.map((name) => [name, item[name]]));

/**
 * An erasure's walk of the tables, a Scan segment at a time: each item that mentions the address
 * is rewritten with its erased key in the address's place, or deleted where the item is nothing
 * but the person's data. A Scan reads every item; the address is looked for in each one's values
 * (whole addresses only, see `erase-mentions`), so a field added later is not missed.
 */
export class DynamoEraser implements Eraser {
  constructor(private readonly options: DynamoEraserOptions) {}

  tables(): ErasureTable[] {
    return (Object.keys(this.options.tables) as ErasureTable[]).filter((table) => this.options.tables[table]);
  }

  async walk(
    table: ErasureTable,
    person: { email: string; key: string; requestId: string },
    position: SegmentPosition,
    timeLeft: () => boolean,
  ): Promise<{ erased: number; next?: Record<string, unknown> | undefined }> {
    const tableName = this.options.tables[table];
    if (!tableName) return { erased: 0 };
    let erased = 0;
    const next = await scanSegmentStep(
      this.options.client,
      { TableName: tableName, Limit: this.options.pageSize },
      position,
      timeLeft,
      async (items) => {
        // Each item's writes are its own: ten at once, so a page where every item names the person
        // (an address cc'd on every job) is erased well within a step's margin.
        const named = items.filter((item) => mentions(item, person.email));
        const done = await mapConcurrently(named, CONCURRENT_ERASURES, (item) =>
          this.erase(table, tableName, item, person),
        );
        erased += done.filter(Boolean).length;
      },
    );
    return { erased, next };
  }

  /** Erases the address from one item; false when the item turned out to be the request's own. */
  private async erase(
    table: ErasureTable,
    tableName: string,
    item: Item,
    person: { email: string; key: string; requestId: string },
  ): Promise<boolean> {
    const { client } = this.options;
    const { email, key } = person;
    switch (table) {
      case 'deliveries': {
        if (item.recipient !== email)
          return this.rewrite(tableName, ['job_id', 'recipient'], item, person, (read) =>
            replaceMentions(read, email, key),
          );
        return this.moveToKey(tableName, item, person);
      }
      case 'job_contents':
        // A recipient list keeps its order (a chunk is read by offset) and its length (counts).
        return this.rewrite(tableName, ['job_id', 'part'], item, person, (read) =>
          replaceMentions(read, email, key),
        );
      case 'rendered_emails': {
        const nonprofits = item.nonprofits as Record<string, unknown> | undefined;
        if (item.recipient === email || !nonprofits) {
          await client.send(
            new DeleteCommand({
              TableName: tableName,
              Key: { job_id: item.job_id, recipient: item.recipient },
            }),
          );
          return true;
        }
        // A batch's snapshot: the person's name and postal address go, the others' stay.
        return this.rewrite(tableName, ['job_id', 'recipient'], item, person, (read) => {
          const { [email]: _person, ...others } = (read.nonprofits ?? {}) as Record<string, unknown>;
          return replaceMentions({ ...read, nonprofits: others }, email, key);
        });
      }
      case 'audit':
        // The one change an erasure may make to a record: the address, wherever the record names
        // it (whom it is about, the reason given, what it replaced), becomes the key; what was done,
        // when and by whom stays. The grant allows these attributes and no other.
        return this.rewrite(
          tableName,
          ['trail', 'entry'],
          item,
          person,
          (read) => replaceMentions(read, email, key),
          AUDIT_REWRITABLE,
        );
      case 'suppressions':
        // The person's own record goes at the completion (the key's stays); another's note that
        // names them is rewritten.
        if (item.email === email) return false;
        return this.rewrite(tableName, ['email'], item, person, (read) => replaceMentions(read, email, key));
      case 'outbox':
        // Events already on the bus are the rules' targets' to erase; one still waiting is dropped.
        await client.send(new DeleteCommand({ TableName: tableName, Key: { event_id: item.event_id } }));
        return true;
      case 'person_requests': {
        // Another request about the person (an export, and what it found): all of it goes.
        const requestId = String(item.request_id);
        if (requestId === person.requestId) return false;
        const parts = requestId.startsWith('hold#')
          ? [{ request_id: requestId, part: item.part }]
          : (
              await queryAll(client, {
                TableName: tableName,
                KeyConditionExpression: 'request_id = :id',
                ExpressionAttributeValues: { ':id': requestId },
                ProjectionExpression: 'request_id, part',
              })
            ).map(({ request_id, part }) => ({ request_id, part }));
        await batchDeleteAll(client, tableName, parts);
        return true;
      }
    }
  }

  /**
   * The person's own delivery, moved to its key (the sort key, and the shard it names) in one
   * transaction, only while it is as it was read: a write in between (an SES report noted, the
   * counter's mark) makes it read again and move that. The copy carries no `stream_counted`, so the
   * counter's stream consumer does not count it again; the delete is not counted either (the mapping
   * reads no REMOVE). False when it was moved already (this step handed over twice).
   */
  private async moveToKey(
    tableName: string,
    read: Item,
    person: { email: string; key: string },
  ): Promise<boolean> {
    const { client } = this.options;
    const { email, key } = person;
    const jobId = jobOfDeliveryPartition(String(read.job_id));
    const shards = (await this.options.contents.content(jobId))?.delivery_shards ?? 1;
    const itemKey = { job_id: read.job_id, recipient: email };
    let item: Item | undefined = read;
    for (let attempt = 1; item; attempt++) {
      const current: Item = item;
      const {
        [STREAM_COUNTED]: _counted,
        claim_token: _token,
        lease_until: _lease,
        ...kept
      } = replaceMentions(current, email, key);
      const compared = Object.keys(current).filter((name) => name !== 'job_id' && name !== 'recipient');
      // What a writer may add to a delivery after it was read (an outcome, its id, a report): still absent.
      const absent = LATER_DELIVERY_ATTRIBUTES.filter((name) => !(name in current));
      try {
        await client.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Delete: {
                  TableName: tableName,
                  Key: itemKey,
                  ConditionExpression: [
                    'attribute_exists(recipient)',
                    ...compared.map((_, i) => `#a${i} = :v${i}`),
                    ...absent.map((_, i) => `attribute_not_exists(#n${i})`),
                  ].join(' AND '),
                  ...(compared.length + absent.length > 0
                    ? {
                        ExpressionAttributeNames: Object.fromEntries([
                          ...compared.map((name, i) => [`#a${i}`, name]),
                          ...absent.map((name, i) => [`#n${i}`, name]),
                        ]),
                        ...(compared.length > 0
                          ? {
                              ExpressionAttributeValues: Object.fromEntries(
                                compared.map((name, i) => [`:v${i}`, current[name]]),
                              ),
                            }
                          : {}),
                      }
                    : {}),
                },
              },
              {
                Put: {
                  TableName: tableName,
                  Item: { ...kept, job_id: deliveryPartition(jobId, key, shards), recipient: key },
                  ConditionExpression: 'attribute_not_exists(recipient)',
                },
              },
            ],
          }),
        );
        return true;
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const [deleted, put] = error.CancellationReasons ?? [];
        if (deleted?.Code !== 'ConditionalCheckFailed' && put?.Code === 'ConditionalCheckFailed') {
          // The key has a delivery of the job already (an earlier erasure of the address, whose
          // owner came back): that one stands, counted, and this copy under the address goes.
          await client.send(
            new DeleteCommand({
              TableName: tableName,
              Key: itemKey,
              ConditionExpression: 'attribute_exists(recipient)',
            }),
          );
          return true;
        }
        if (deleted?.Code !== 'ConditionalCheckFailed' || attempt >= REWRITE_ATTEMPTS) throw error;
        // Gone (moved by this step handed over twice), or changed since it was read: read it again.
        ({ Item: item } = await client.send(
          new GetCommand({ TableName: tableName, Key: itemKey, ConsistentRead: true }),
        ));
      }
    }
    return false;
  }

  /**
   * Sets the attributes of an item that the erasure changes, each only if it is still as it was
   * read, so a write in between (an SES report noted on a delivery, a note changed) is never
   * overwritten: the item is read again and erased again. `only`: the attributes it may change.
   * False when the item names the person no more (gone, or rewritten by this step handed over twice).
   */
  private async rewrite(
    tableName: string,
    keyNames: readonly string[],
    read: Item,
    person: { email: string },
    change: (item: Item) => Item,
    only?: readonly string[],
  ): Promise<boolean> {
    const { client } = this.options;
    let item: Item | undefined = read;
    for (let attempt = 1; item && mentions(item, person.email); attempt++) {
      const current: Item = item;
      const rewritten = change(current);
      const changed = (only ?? Object.keys(rewritten)).filter(
        (name) => !keyNames.includes(name) && canonical(current[name]) !== canonical(rewritten[name]),
      );
      if (changed.length === 0) return false;
      try {
        await client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: pick(current, keyNames),
            UpdateExpression: `SET ${changed.map((_, index) => `#a${index} = :new${index}`).join(', ')}`,
            ConditionExpression: changed.map((_, index) => `#a${index} = :old${index}`).join(' AND '),
            ExpressionAttributeNames: Object.fromEntries(changed.map((name, index) => [`#a${index}`, name])),
            ExpressionAttributeValues: Object.fromEntries(
              changed.flatMap((name, index) => [
                [`:new${index}`, rewritten[name]],
                [`:old${index}`, current[name]],
              ]),
            ),
          }),
        );
        return true;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException) || attempt >= REWRITE_ATTEMPTS) throw error;
        ({ Item: item } = await client.send(
          new GetCommand({ TableName: tableName, Key: pick(current, keyNames), ConsistentRead: true }),
        ));
      }
    }
    return false;
  }
}
