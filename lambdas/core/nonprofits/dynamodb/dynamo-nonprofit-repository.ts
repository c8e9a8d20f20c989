import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { Actor } from '../../audit/audit';
import type { DynamoAuditTrail } from '../../audit/dynamodb/dynamo-audit-trail';
import { INDEX } from '../../bindings';
import { decodeCursor, type Page, pageFrom } from '../../cursor';
import { batchGetAll } from '../../dynamo-paging';
import { writeAtomically } from '../../dynamo-writes';
import { ConflictError, NotFoundError } from '../../errors';
import * as z from '../../zod';
import {
  domainOf,
  type NewNonprofit,
  type Nonprofit,
  type NonprofitDetails,
  storedEmailAddress,
} from '../nonprofit';
import type { NonprofitQuery, NonprofitRepository } from '../repository';

export interface DynamoNonprofitRepositoryOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /**
   * Where creates, updates and deletes are recorded, each in its change's transaction (core/audit).
   * An import's repository has none: the import is recorded once, with its counts.
   */
  audit?: DynamoAuditTrail | undefined;
  now?: () => Date;
}

const tableKey = z.strictObject({ email: storedEmailAddress });
/** A key of the domain index, valid only for the domain being queried. */
const domainIndexKey = (domain: string) =>
  z.strictObject({
    email: storedEmailAddress.refine((email) => domainOf(email) === domain),
    domain: z.literal(domain),
  });

/** Items come back from DynamoDB in no particular field order; answers keep one. */
function toNonprofit(item: Record<string, unknown>): Nonprofit {
  const { email, domain, name, address, created_at, updated_at } = item as unknown as Nonprofit;
  return { email, domain, name, address, created_at, updated_at };
}

/** A change whose caller did not say who made it: a request's, with no key known. */
const API: Actor = { source: 'api' };

const notFound = (email: string) => new NotFoundError(`Nonprofit with email ${email} not found.`);

export class DynamoNonprofitRepository implements NonprofitRepository {
  private readonly client: DynamoDBDocumentClient;
  private readonly tableName: string;
  private readonly now: () => Date;
  private readonly audit: DynamoAuditTrail | undefined;

  constructor(options: DynamoNonprofitRepositoryOptions) {
    this.client = options.client;
    this.audit = options.audit;
    this.tableName = options.tableName;
    this.now = options.now ?? (() => new Date());
  }

  async create(input: NewNonprofit, actor: Actor = API): Promise<Nonprofit> {
    const timestamp = this.now().toISOString();
    const nonprofit: Nonprofit = {
      email: input.email,
      domain: domainOf(input.email),
      name: input.name,
      address: input.address,
      created_at: timestamp,
      updated_at: timestamp,
    };
    const created = await writeAtomically(
      this.client,
      {
        Put: {
          TableName: this.tableName,
          Item: nonprofit,
          ConditionExpression: 'attribute_not_exists(email)',
        },
      },
      [this.audit?.put({ action: 'nonprofit.created', email: input.email, actor })],
    );
    if (!created) throw new ConflictError(`Nonprofit with email ${input.email} already exists.`);
    return nonprofit;
  }

  /** For imports: replaces the name and address only when they differ, so a repeated import writes nothing. */
  async updateIfChanged(input: NewNonprofit): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { email: input.email },
          UpdateExpression: 'SET #name = :name, address = :address, updated_at = :updated_at',
          ConditionExpression: 'attribute_exists(email) AND (#name <> :name OR address <> :address)',
          ExpressionAttributeNames: { '#name': 'name' },
          ExpressionAttributeValues: {
            ':name': input.name,
            ':address': input.address,
            ':updated_at': this.now().toISOString(),
          },
        }),
      );
      return true;
    } catch (error) {
      // The same already (or deleted in between: nothing to update, and nothing created behind the caller's back).
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  async get(email: string): Promise<Nonprofit | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { email }, ConsistentRead: true }),
    );
    return Item ? toNonprofit(Item) : undefined;
  }

  /**
   * Replaces the name and address. The item is read first and written only while it still holds
   * what was read, so the audit record names the fields this update changed.
   */
  async update(email: string, details: NonprofitDetails, actor: Actor = API): Promise<Nonprofit> {
    for (;;) {
      const found = await this.get(email);
      if (!found) throw notFound(email);
      const updated: Nonprofit = { ...found, ...details, updated_at: this.now().toISOString() };
      const changed = (['name', 'address'] as const).filter((field) => found[field] !== details[field]);
      const written = await writeAtomically(
        this.client,
        {
          Update: {
            TableName: this.tableName,
            Key: { email },
            UpdateExpression: 'SET #name = :name, address = :address, updated_at = :updated_at',
            ConditionExpression: '#name = :readName AND address = :readAddress',
            ExpressionAttributeNames: { '#name': 'name' },
            ExpressionAttributeValues: {
              ':name': updated.name,
              ':address': updated.address,
              ':updated_at': updated.updated_at,
              ':readName': found.name,
              ':readAddress': found.address,
            },
          },
        },
        [this.audit?.put({ action: 'nonprofit.updated', email, actor, details: { fields: changed } })],
      );
      if (written) return updated;
      // Changed or deleted since the read: read again.
    }
  }

  async delete(email: string, actor: Actor = API): Promise<void> {
    const deleted = await writeAtomically(
      this.client,
      {
        Delete: { TableName: this.tableName, Key: { email }, ConditionExpression: 'attribute_exists(email)' },
      },
      [this.audit?.put({ action: 'nonprofit.deleted', email, actor })],
    );
    if (!deleted) throw notFound(email);
  }

  /**
   * Reads one item more than asked so the last page says so (`nextCursor: null`) instead of
   * handing out a cursor to an empty page. A domain filter is a Query on the domain index; the
   * unfiltered listing has no better key than a Scan.
   */
  async list({ domain, limit, cursor }: NonprofitQuery): Promise<Page<Nonprofit>> {
    const scope = domain === undefined ? 'nonprofits' : `nonprofits@${domain}`;
    const startKey =
      cursor === undefined
        ? undefined
        : decodeCursor(cursor, scope, domain === undefined ? tableKey : domainIndexKey(domain));
    const page = await this.client.send(
      domain === undefined
        ? new ScanCommand({ TableName: this.tableName, Limit: limit + 1, ExclusiveStartKey: startKey })
        : new QueryCommand({
            TableName: this.tableName,
            IndexName: INDEX.nonprofitsByDomain,
            KeyConditionExpression: '#domain = :domain',
            ExpressionAttributeNames: { '#domain': 'domain' },
            ExpressionAttributeValues: { ':domain': domain },
            Limit: limit + 1,
            ExclusiveStartKey: startKey,
          }),
    );
    return pageFrom((page.Items ?? []).map(toNonprofit), limit, page.LastEvaluatedKey, {
      key: (item) =>
        domain === undefined ? { email: item.email } : { email: item.email, domain: item.domain },
      scope,
    });
  }

  /** Batched reads, eight calls at once, unprocessed keys retried (see batchGetAll). */
  async getMany(
    emails: readonly string[],
    { consistent = true }: { consistent?: boolean } = {},
  ): Promise<Map<string, Nonprofit>> {
    const keys = [...new Set(emails)].map((email) => ({ email }));
    const items = await batchGetAll(this.client, this.tableName, keys, { consistent, concurrency: 8 });
    return new Map(items.map((item) => [String(item.email), toNonprofit(item)]));
  }
}
