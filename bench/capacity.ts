/**
 * DynamoDB's billing arithmetic, from the requests and answers themselves: an item's size is the
 * sum of its attribute names and values; a write unit covers 1 KB, a read unit 4 KB (half for an
 * eventually consistent read); transactions cost double.
 */

type AttributeValue = Record<string, unknown>;

function valueSize(value: AttributeValue): number {
  const [type, content] = Object.entries(value)[0] ?? ['NULL', true];
  switch (type) {
    case 'S':
      return Buffer.byteLength(String(content));
    case 'N':
      return Math.ceil(String(content).replace(/[-.]/g, '').replace(/^0+/, '').length / 2) + 1;
    case 'B':
      return Buffer.from(String(content), 'base64').length;
    case 'BOOL':
    case 'NULL':
      return 1;
    case 'SS':
    case 'NS':
      return (content as string[]).reduce((sum, item) => sum + Buffer.byteLength(item), 0);
    case 'L':
      return 3 + (content as AttributeValue[]).reduce((sum, item) => sum + 1 + valueSize(item), 0);
    case 'M':
      return 3 + itemSize(content as Record<string, AttributeValue>);
    default:
      return 0;
  }
}

export function itemSize(item: Record<string, AttributeValue> | undefined): number {
  if (!item) return 0;
  return Object.entries(item).reduce(
    (sum, [name, value]) => sum + Buffer.byteLength(name) + valueSize(value),
    0,
  );
}

const writeUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024));
const readUnits = (bytes: number, consistent: boolean) =>
  Math.max(1, Math.ceil(bytes / 4096)) * (consistent ? 1 : 0.5);

type Json = Record<string, unknown>;

/** Write and read request units one DynamoDB call consumed, as on-demand billing counts them. */
export function consumedUnits(
  operation: string,
  request: Json,
  response: Json,
): { write: number; read: number } {
  const consistent = request.ConsistentRead === true;
  switch (operation) {
    case 'PutItem':
      return { write: writeUnits(itemSize(request.Item as Json as Record<string, AttributeValue>)), read: 0 };
    case 'UpdateItem':
    case 'DeleteItem':
      return { write: 1, read: 0 };
    case 'BatchWriteItem': {
      const requests = Object.values(
        request.RequestItems as Record<string, { PutRequest?: { Item: Json } }[]>,
      ).flat();
      return {
        write: requests.reduce(
          (sum, entry) =>
            sum + writeUnits(itemSize(entry.PutRequest?.Item as Record<string, AttributeValue>)),
          0,
        ),
        read: 0,
      };
    }
    case 'TransactWriteItems': {
      const items = request.TransactItems as { Put?: { Item: Json } }[];
      // Updates here touch small items (a job and a stream batch's mark, a delivery): one unit each, before doubling.
      const units = items.reduce(
        (sum, item) =>
          sum + (item.Put ? writeUnits(itemSize(item.Put.Item as Record<string, AttributeValue>)) : 1),
        0,
      );
      return { write: 2 * units, read: 0 };
    }
    case 'GetItem':
      return {
        write: 0,
        read: readUnits(itemSize(response.Item as Record<string, AttributeValue>), consistent),
      };
    case 'BatchGetItem': {
      const tables = request.RequestItems as Record<string, { ConsistentRead?: boolean; Keys?: unknown[] }>;
      const responses = (response.Responses ?? {}) as Record<string, Record<string, AttributeValue>[]>;
      const unprocessed = (response.UnprocessedKeys ?? {}) as Record<string, { Keys?: unknown[] }>;
      let read = 0;
      for (const [table, asked] of Object.entries(tables)) {
        const consistent = asked.ConsistentRead === true;
        const items = responses[table] ?? [];
        for (const item of items) read += readUnits(itemSize(item), consistent);
        // A key with no item still costs the least read (DynamoDB's BatchGetItem reference): most
        // suppression lookups find nothing.
        const missing = (asked.Keys?.length ?? 0) - items.length - (unprocessed[table]?.Keys?.length ?? 0);
        read += Math.max(0, missing) * readUnits(0, consistent);
      }
      return { write: 0, read };
    }
    case 'Query':
    case 'Scan': {
      const items = (response.Items ?? []) as Record<string, AttributeValue>[];
      return {
        write: 0,
        read: readUnits(
          items.reduce((sum, item) => sum + itemSize(item), 0),
          consistent,
        ),
      };
    }
    default:
      return { write: 0, read: 0 };
  }
}

/** A global secondary index as billing sees it: the attributes of its key and what it projects. */
export interface IndexShape {
  keys: string[];
  projection: 'ALL' | 'KEYS_ONLY' | 'INCLUDE';
}

/** The writes a call makes to each table, with the written item where the request carries it. */
function tableWrites(
  operation: string,
  request: Json,
): { table: string; item?: Record<string, AttributeValue> }[] {
  const table = String(request.TableName ?? '');
  switch (operation) {
    case 'PutItem':
      return [{ table, item: request.Item as Record<string, AttributeValue> }];
    case 'UpdateItem':
    case 'DeleteItem':
      return [{ table }];
    case 'BatchWriteItem':
      return Object.entries(
        request.RequestItems as Record<string, { PutRequest?: { Item: Json } }[]>,
      ).flatMap(([name, entries]) =>
        entries.map((entry) => ({
          table: name,
          ...(entry.PutRequest ? { item: entry.PutRequest.Item as Record<string, AttributeValue> } : {}),
        })),
      );
    case 'TransactWriteItems':
      return (request.TransactItems as Record<string, { TableName: string; Item?: Json }>[]).flatMap(
        (action) => {
          const [kind, body] = Object.entries(action)[0] ?? [];
          if (!body || kind === 'ConditionCheck') return [];
          return [
            {
              table: body.TableName,
              ...(body.Item ? { item: body.Item as Record<string, AttributeValue> } : {}),
            },
          ];
        },
      );
    default:
      return [];
  }
}

/**
 * The write units a call's index updates cost: DynamoDB writes every global secondary index whose key
 * the item carries, billed by the projected size (not doubled in a transaction). A put's item is in
 * the request; an update or delete does not show the item, so it counts one unit per index, as an
 * item under 1 KB that carries the index's key would (this project's job items do while they run).
 */
export function indexWriteUnits(
  operation: string,
  request: Json,
  indexesOf: (table: string) => IndexShape[],
): number {
  let units = 0;
  for (const { table, item } of tableWrites(operation, request)) {
    for (const index of indexesOf(table)) {
      if (!item) {
        units += 1;
        continue;
      }
      if (!index.keys.every((key) => key in item)) continue;
      const projected =
        index.projection === 'KEYS_ONLY'
          ? Object.fromEntries(Object.entries(item).filter(([name]) => index.keys.includes(name)))
          : item;
      units += writeUnits(itemSize(projected));
    }
  }
  return units;
}
