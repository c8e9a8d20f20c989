import {
  BatchGetCommand,
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  type ScanCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { backoff, chunks, mapConcurrently } from './concurrency';

type Item = Record<string, unknown>;

/** BatchGetItem takes at most 100 keys a call. */
const BATCH_GET_SIZE = 100;
const MAX_UNPROCESSED_RETRIES = 8;

/**
 * Reads items by key in batches, a few calls at once. DynamoDB may leave keys unprocessed under
 * load; those are asked for again with backoff, never silently dropped (a dropped key would read
 * as "not found").
 */
export async function batchGetAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly Item[],
  options: { consistent?: boolean; concurrency?: number } = {},
): Promise<Item[]> {
  const found: Item[] = [];
  await mapConcurrently(chunks(keys, BATCH_GET_SIZE), options.concurrency ?? 4, async (batch) => {
    let pending: Item[] = batch;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > MAX_UNPROCESSED_RETRIES) throw new Error('DynamoDB left keys unprocessed after retries');
      if (attempt > 0) await backoff(attempt);
      const result = await client.send(
        new BatchGetCommand({
          RequestItems: { [tableName]: { Keys: pending, ConsistentRead: options.consistent ?? false } },
        }),
      );
      found.push(...(result.Responses?.[tableName] ?? []));
      pending = (result.UnprocessedKeys?.[tableName]?.Keys ?? []) as Item[];
    }
  });
  return found;
}

/** BatchWriteItem takes at most 25 items a call. */
const BATCH_WRITE_SIZE = 25;

/** Puts items in batches; items DynamoDB leaves unprocessed are put again with backoff, never dropped. */
export function batchPutAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  items: readonly Item[],
): Promise<void> {
  return batchWriteAll(
    client,
    tableName,
    items.map((item) => ({ PutRequest: { Item: item } })),
  );
}

/** Deletes items by key in batches, as `batchPutAll` puts them. */
export function batchDeleteAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly Item[],
): Promise<void> {
  return batchWriteAll(
    client,
    tableName,
    keys.map((key) => ({ DeleteRequest: { Key: key } })),
  );
}

type WriteRequest = { PutRequest: { Item: Item } } | { DeleteRequest: { Key: Item } };

async function batchWriteAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  requests: readonly WriteRequest[],
): Promise<void> {
  await mapConcurrently(chunks(requests, BATCH_WRITE_SIZE), 4, async (batch) => {
    let pending = batch;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > MAX_UNPROCESSED_RETRIES) throw new Error('DynamoDB left items unprocessed after retries');
      if (attempt > 0) await backoff(attempt);
      const result = await client.send(new BatchWriteCommand({ RequestItems: { [tableName]: pending } }));
      pending = (result.UnprocessedItems?.[tableName] ?? []) as typeof pending;
    }
  });
}

/** Every item a query matches, following LastEvaluatedKey to the end. */
export async function queryAll(client: DynamoDBDocumentClient, input: QueryCommandInput): Promise<Item[]> {
  const items: Item[] = [];
  let startKey: Item | undefined;
  do {
    const result = await client.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey }));
    items.push(...(result.Items ?? []));
    startKey = result.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/**
 * One step of a parallel Scan segment: pages from `position.after` on, each handed to `onPage`
 * (and its work done) before the next is read, for as long as `timeLeft()` holds (at least one
 * page). Answers the key to resume after, `undefined` once the segment is finished.
 */
export async function scanSegmentStep(
  client: DynamoDBDocumentClient,
  input: Omit<ScanCommandInput, 'Segment' | 'TotalSegments' | 'ExclusiveStartKey'>,
  position: { segment: number; segments: number; after?: Item | undefined },
  timeLeft: () => boolean,
  onPage: (items: Item[]) => Promise<void>,
): Promise<Item | undefined> {
  let after = position.after;
  do {
    const page = await client.send(
      new ScanCommand({
        ...input,
        Segment: position.segment,
        TotalSegments: position.segments,
        ExclusiveStartKey: after,
      }),
    );
    await onPage(page.Items ?? []);
    after = page.LastEvaluatedKey;
  } while (after && timeLeft());
  return after;
}
