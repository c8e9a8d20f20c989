import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  PutCommand,
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

/** Every part of an item put back as it was but for the mentions: a write only if they are there. */
const unchangedBut = (item: Item, key: Record<string, unknown>) => ({
  ConditionExpression: Object.keys(key)
    .map((_, index) => `attribute_exists(#k${index})`)
    .join(' AND '),
  ExpressionAttributeNames: Object.fromEntries(Object.keys(key).map((name, index) => [`#k${index}`, name])),
  Item: item,
});

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
        const rewritten = replaceMentions(item, email, key);
        if (item.recipient !== email) {
          await client.send(
            new PutCommand({ TableName: tableName, ...unchangedBut(rewritten, { job_id: 1, recipient: 1 }) }),
          );
          return true;
        }
        // The person's own delivery: moved to its key (the sort key, and the shard it names), in
        // one transaction. The copy carries no `stream_counted`, so the counter's stream consumer
        // does not count it again; the delete is not counted either (the mapping reads no REMOVE).
        const jobId = jobOfDeliveryPartition(String(item.job_id));
        const shards = (await this.options.contents.content(jobId))?.delivery_shards ?? 1;
        const { [STREAM_COUNTED]: _counted, claim_token: _token, lease_until: _lease, ...kept } = rewritten;
        await client.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Delete: {
                  TableName: tableName,
                  Key: { job_id: item.job_id, recipient: email },
                  ConditionExpression: 'attribute_exists(recipient)',
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
      }
      case 'job_contents':
        // A recipient list keeps its order (a chunk is read by offset) and its length (counts).
        await client.send(
          new PutCommand({
            TableName: tableName,
            ...unchangedBut(replaceMentions(item, email, key), { job_id: 1, part: 1 }),
          }),
        );
        return true;
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
        const { [email]: _person, ...others } = nonprofits;
        await client.send(
          new PutCommand({
            TableName: tableName,
            ...unchangedBut(replaceMentions({ ...item, nonprofits: others }, email, key), {
              job_id: 1,
              recipient: 1,
            }),
          }),
        );
        return true;
      }
      case 'audit': {
        // The one change an erasure may make to a record: the address, wherever the record names
        // it (whom it is about, the reason given, what it replaced), becomes the key; what was done,
        // when and by whom stays. The grant allows these attributes and no other.
        const rewritten = replaceMentions(item, email, key);
        const changed = AUDIT_REWRITABLE.filter(
          (name) => JSON.stringify(item[name]) !== JSON.stringify(rewritten[name]),
        );
        if (changed.length === 0) return false;
        try {
          await client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: { trail: item.trail, entry: item.entry },
              UpdateExpression: `SET ${changed.map((_, index) => `#a${index} = :new${index}`).join(', ')}`,
              ConditionExpression: changed.map((_, index) => `#a${index} = :old${index}`).join(' AND '),
              ExpressionAttributeNames: Object.fromEntries(
                changed.map((name, index) => [`#a${index}`, name]),
              ),
              ExpressionAttributeValues: Object.fromEntries(
                changed.flatMap((name, index) => [
                  [`:new${index}`, rewritten[name]],
                  [`:old${index}`, item[name]],
                ]),
              ),
            }),
          );
          return true;
        } catch (error) {
          // Rewritten since it was read (by this erasure's step handed over twice): nothing left to do.
          if (error instanceof ConditionalCheckFailedException) return false;
          throw error;
        }
      }
      case 'suppressions':
        // The person's own record goes at the completion (the key's stays); another's note that
        // names them is rewritten.
        if (item.email === email) return false;
        await client.send(
          new PutCommand({
            TableName: tableName,
            ...unchangedBut(replaceMentions(item, email, key), { email: 1 }),
          }),
        );
        return true;
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
}
