import { createHash } from 'node:crypto';
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { DynamoAuditTrail } from '../../audit/dynamodb/dynamo-audit-trail';
import { decodeCursor, type Page, pageFrom } from '../../cursor';
import { batchPutAll } from '../../dynamo-paging';
import { type RecordWrite, writeAtomically } from '../../dynamo-writes';
import type { Nonprofit } from '../../nonprofits/nonprofit';
import type { Suppression } from '../../suppressions/suppression';
import { expiresAfter, isExpired } from '../../ttl';
import * as z from '../../zod';
import {
  type CreatedRequest,
  type EmailOnRecord,
  type ErasureTable,
  type Finding,
  type NewPersonRequest,
  PERSON_REQUEST_RETENTION_DAYS,
  type PersonRequest,
  type PersonRequestQuery,
  type PersonRequestStore,
  REQUEST_HOLD_MS,
  WALK_SEGMENT_SPACE,
} from '../person-requests';

/**
 * The person requests table. Under each request's id (partition key `request_id`), sort key `part`:
 * - `#request`: the request, its status and progress;
 * - `email#<job id>#<role>#<digest>`: one email found on record (the digest names the delivery it
 *   was found on without naming its recipient), so a step handed over twice stores it once.
 * Beside them, `hold#<kind>#<address>` (part `#request`) names the request of that kind under way
 * for the address, until it completes or `REQUEST_HOLD_MS` passes. Everything expires by TTL
 * `PERSON_REQUEST_RETENTION_DAYS` after it is written.
 */
const REQUEST_PART = '#request';
const FINDING_PREFIX = 'email#';

const holdKey = (hold: string) => ({ request_id: hold, part: REQUEST_PART });

const findingPart = ({ key, email }: Finding) =>
  `${FINDING_PREFIX}${email.job_id}#${email.role}#${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;

/** A findings cursor's key: this request's, and a part shaped as `findingPart` makes them (else a 400, never a 500). */
const findingKey = (requestId: string) =>
  z.strictObject({
    request_id: z.literal(requestId),
    part: z.string().regex(/^email#[0-9a-f-]{36}#(recipient|cc)#[0-9a-f]{24}$/),
  });

/** Segments of the request's current walk counted done (see `WALK_SEGMENT_SPACE`). */
function segmentsOfWalk(item: Record<string, unknown>): number {
  if (!(item.segments_done instanceof Set)) return 0;
  const walk = typeof item.walks === 'number' ? item.walks : 0;
  return [...(item.segments_done as Set<number>)].filter(
    (segment) => Math.floor(segment / WALK_SEGMENT_SPACE) === walk,
  ).length;
}

function toRequest(item: Record<string, unknown>): PersonRequest {
  const done = segmentsOfWalk(item);
  return {
    request_id: String(item.request_id),
    kind: item.kind as PersonRequest['kind'],
    ...(typeof item.email === 'string' ? { email: item.email } : {}),
    ...(typeof item.address_key === 'string' ? { address_key: item.address_key } : {}),
    ...(Array.isArray(item.waiting_for) ? { waiting_for: item.waiting_for as string[] } : {}),
    ...(item.erased ? { erased: item.erased as PersonRequest['erased'] } : {}),
    ...(typeof item.walks === 'number' ? { walks: item.walks } : {}),
    ...(typeof item.walk_started_at === 'string' ? { walk_started_at: item.walk_started_at } : {}),
    ...(Array.isArray(item.scheduled_jobs) ? { scheduled_jobs: item.scheduled_jobs as string[] } : {}),
    ...(typeof item.walk_requested === 'number' ? { walk_requested: item.walk_requested } : {}),
    ...(typeof item.hold === 'string' ? { hold: item.hold } : {}),
    status: item.status as PersonRequest['status'],
    requested_at: String(item.requested_at),
    api_key_id: String(item.api_key_id),
    ...(typeof item.completed_at === 'string' ? { completed_at: item.completed_at } : {}),
    segments_done: done,
    segments_total: Number(item.segments_total ?? 0),
    ...('nonprofit' in item ? { nonprofit: (item.nonprofit as Nonprofit | null) ?? null } : {}),
    ...('suppression' in item ? { suppression: (item.suppression as Suppression | null) ?? null } : {}),
  };
}

export interface DynamoPersonRequestsOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /**
   * What an erasure changes beside its request (the functions that accept and complete one): the
   * suppression list, the registry, and the audit trail its acceptance and completion are recorded in.
   */
  erasure?: { suppressionsTable: string; nonprofitsTable: string; audit: DynamoAuditTrail } | undefined;
  now?: () => Date;
}

export class DynamoPersonRequests implements PersonRequestStore {
  private readonly now: () => Date;

  constructor(private readonly options: DynamoPersonRequestsOptions) {
    this.now = options.now ?? (() => new Date());
  }

  private expiry(): number {
    return expiresAfter(this.now(), PERSON_REQUEST_RETENTION_DAYS);
  }

  async create(request: NewPersonRequest): Promise<CreatedRequest> {
    const { client, tableName } = this.options;
    const notHeld = (at: Date) => ({
      ConditionExpression: 'attribute_not_exists(request_id) OR held_until < :now',
      ExpressionAttributeValues: { ':now': at.getTime() },
    });
    for (;;) {
      const at = request.requested_at;
      let taken: boolean;
      try {
        taken = await writeAtomically(
          client,
          {
            Put: {
              TableName: tableName,
              Item: {
                ...holdKey(request.hold),
                held_by: request.request_id,
                held_until: at.getTime() + REQUEST_HOLD_MS,
                expires_at: this.expiry(),
              },
              ...notHeld(at),
            },
          },
          [
            {
              Put: {
                TableName: tableName,
                Item: {
                  request_id: request.request_id,
                  part: REQUEST_PART,
                  kind: request.kind,
                  email: request.email,
                  status: 'queued',
                  requested_at: at.toISOString(),
                  api_key_id: request.api_key_id,
                  hold: request.hold,
                  ...(request.address_key ? { address_key: request.address_key } : {}),
                  segments_total: 0,
                  expires_at: this.expiry(),
                },
                ConditionExpression: 'attribute_not_exists(request_id)',
              },
            },
            ...this.erasureAccepted(request),
            // An export waits for an erasure of the address under way (it would find what the
            // erasure is taking away, and keep it).
            request.unless_held
              ? {
                  ConditionCheck: { TableName: tableName, Key: holdKey(request.unless_held), ...notHeld(at) },
                }
              : undefined,
          ],
        );
      } catch (error) {
        if (!(error instanceof TransactionCanceledException) || !request.unless_held) throw error;
        const reasons = error.CancellationReasons ?? [];
        if (reasons[reasons.length - 1]?.Code !== 'ConditionalCheckFailed') throw error;
        taken = false;
      }
      if (taken) return { created: true };
      // Held by a request of this kind, or (an export) by an erasure; released between the write
      // and the reads: try to take it again.
      for (const [hold, kind] of [
        [request.hold, request.kind],
        ...(request.unless_held ? [[request.unless_held, 'erasure'] as const] : []),
      ] as const) {
        const { Item } = await client.send(
          new GetCommand({ TableName: tableName, Key: holdKey(hold), ConsistentRead: true }),
        );
        if (Item && typeof Item.held_by === 'string' && Number(Item.held_until) >= at.getTime())
          return { created: false, held_by: Item.held_by, kind };
      }
    }
  }

  async discard(request: NewPersonRequest): Promise<void> {
    await this.options.client.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Delete: {
              TableName: this.options.tableName,
              Key: { request_id: request.request_id, part: REQUEST_PART },
            },
          },
          { Delete: this.holdDelete(request.hold, request.request_id) },
        ],
      }),
    );
    // An erasure's acceptance suppressed the address and deleted its entry: those stand, as a
    // suppression asked for should (a new request finds them done).
  }

  async get(requestId: string): Promise<PersonRequest | undefined> {
    const { Item } = await this.options.client.send(
      new GetCommand({
        TableName: this.options.tableName,
        Key: { request_id: requestId, part: REQUEST_PART },
        ConsistentRead: true,
      }),
    );
    // Past its retention a request is gone, though DynamoDB's TTL may take days to remove it.
    return Item && !isExpired(Item.expires_at) ? toRequest(Item) : undefined;
  }

  async findings(requestId: string, { limit, cursor }: PersonRequestQuery): Promise<Page<EmailOnRecord>> {
    const scope = `person-request:${requestId}`;
    const page = await this.options.client.send(
      new QueryCommand({
        TableName: this.options.tableName,
        KeyConditionExpression: 'request_id = :id AND begins_with(part, :prefix)',
        ExpressionAttributeValues: { ':id': requestId, ':prefix': FINDING_PREFIX },
        Limit: limit + 1,
        ExclusiveStartKey:
          cursor === undefined ? undefined : decodeCursor(cursor, scope, findingKey(requestId)),
      }),
    );
    // Past its retention a finding is gone, though DynamoDB's TTL may take days to remove it.
    const items = (page.Items ?? []).filter((item) => !isExpired(item.expires_at));
    const result = pageFrom(items, limit, page.LastEvaluatedKey, {
      key: (item) => ({ request_id: requestId, part: item.part }),
      scope,
    });
    return { ...result, items: result.items.map((item) => item.email as EmailOnRecord) };
  }

  async started(
    requestId: string,
    start: { segments: number } & (
      | { nonprofit: Nonprofit | null; suppression: Suppression | null }
      | { walk: number; at: Date }
    ),
  ): Promise<void> {
    await this.updateUnlessComplete(
      requestId,
      {
        UpdateExpression: `SET #status = :running, segments_total = :segments${
          'nonprofit' in start
            ? ', nonprofit = :nonprofit, suppression = :suppression'
            : ', erased = if_not_exists(erased, :none), walks = :walk, walk_started_at = :at'
        }`,
        ExpressionAttributeValues: {
          ':running': 'running',
          ':segments': start.segments,
          ...('nonprofit' in start
            ? { ':nonprofit': start.nonprofit, ':suppression': start.suppression }
            : { ':none': {}, ':walk': start.walk, ':at': start.at.toISOString() }),
        },
      },
      // A walk is begun once, and never one before the last begun (a step handed over late).
      'walk' in start ? 'attribute_not_exists(walks) OR walks < :walk' : undefined,
    );
  }

  async addFindings(requestId: string, findings: readonly Finding[]): Promise<void> {
    const expires_at = this.expiry();
    await batchPutAll(
      this.options.client,
      this.options.tableName,
      findings.map((finding) => ({
        request_id: requestId,
        part: findingPart(finding),
        email: finding.email,
        expires_at,
      })),
    );
  }

  async segmentDone(requestId: string, walk: number, segment: number): Promise<{ allDone: boolean }> {
    const { Attributes } = await this.options.client.send(
      new UpdateCommand({
        TableName: this.options.tableName,
        Key: { request_id: requestId, part: REQUEST_PART },
        UpdateExpression: 'ADD segments_done :segment',
        ConditionExpression: 'attribute_exists(request_id)',
        ExpressionAttributeValues: { ':segment': new Set([walk * WALK_SEGMENT_SPACE + segment]) },
        ReturnValues: 'ALL_NEW',
      }),
    );
    const item = Attributes ?? {};
    const total = Number(item.segments_total ?? 0);
    const current = typeof item.walks === 'number' ? item.walks : 0;
    return { allDone: current === walk && total > 0 && segmentsOfWalk(item) >= total };
  }

  async complete(request: PersonRequest, at: Date): Promise<void> {
    await this.updateUnlessComplete(request.request_id, {
      UpdateExpression: 'SET #status = :completed, completed_at = :at',
      ExpressionAttributeValues: { ':at': at.toISOString() },
    });
    await this.release(request);
  }

  /** The delete of a hold, only while this request holds it. */
  private holdDelete(hold: string, requestId: string) {
    return {
      TableName: this.options.tableName,
      Key: holdKey(hold),
      ConditionExpression: 'held_by = :id',
      ExpressionAttributeValues: { ':id': requestId },
    };
  }

  async release(request: PersonRequest): Promise<void> {
    if (!request.hold) return;
    try {
      await this.options.client.send(new DeleteCommand(this.holdDelete(request.hold, request.request_id)));
    } catch (error) {
      // Held by a later request already (this one outlived its hold): that hold is not ours to release.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /**
   * What an erasure's acceptance writes with its request, all or none: the address suppressed
   * (`erased`, under the address, so every consumer of a job already running skips it at once) and
   * under its key (what keeps it suppressed once the address is gone); its registry entry deleted
   * (no new job can name it); and the acceptance recorded under the key.
   */
  private erasureAccepted(request: NewPersonRequest): RecordWrite[] {
    const { erasure } = this.options;
    if (request.kind !== 'erasure') return [];
    if (!erasure || !request.address_key)
      throw new Error('Accepting an erasure needs its key and its tables');
    const suppressed_at = request.requested_at.toISOString();
    return [
      {
        Put: {
          TableName: erasure.suppressionsTable,
          Item: { email: request.email, reason: 'erased', suppressed_at },
        },
      },
      {
        Put: {
          TableName: erasure.suppressionsTable,
          Item: { email: request.address_key, reason: 'erased', suppressed_at },
        },
      },
      { Delete: { TableName: erasure.nonprofitsTable, Key: { email: request.email } } },
      erasure.audit.put({
        action: 'person.erasure_requested',
        email: request.address_key,
        actor: { source: 'api', api_key_id: request.api_key_id },
        details: { request_id: request.request_id },
      }),
    ];
  }

  async waitFor(
    requestId: string,
    jobIds: readonly string[],
    next?: { scheduled?: readonly string[]; walk: number },
  ): Promise<void> {
    await this.updateUnlessComplete(requestId, {
      UpdateExpression: `SET #status = :running, waiting_for = :jobs${next ? ', walk_requested = :walk' : ''}${
        next?.scheduled ? ', scheduled_jobs = :scheduled' : ''
      }`,
      ExpressionAttributeValues: {
        ':running': 'running',
        ':jobs': [...jobIds],
        ...(next ? { ':walk': next.walk } : {}),
        ...(next?.scheduled ? { ':scheduled': [...next.scheduled] } : {}),
      },
    });
  }

  async keepAlive(request: PersonRequest): Promise<void> {
    const { client, tableName } = this.options;
    await this.updateUnlessComplete(request.request_id, {
      UpdateExpression: 'SET expires_at = :expires',
      ExpressionAttributeValues: { ':expires': this.expiry() },
    });
    if (!request.hold) return;
    try {
      await client.send(
        new UpdateCommand({
          TableName: tableName,
          Key: holdKey(request.hold),
          UpdateExpression: 'SET held_until = :until, expires_at = :expires',
          ConditionExpression: 'held_by = :id',
          ExpressionAttributeValues: {
            ':until': this.now().getTime() + REQUEST_HOLD_MS,
            ':expires': this.expiry(),
            ':id': request.request_id,
          },
        }),
      );
    } catch (error) {
      // Released, or taken by a later request (this one outlived its hold): not ours to keep.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  async countErased(requestId: string, table: ErasureTable, erased: number): Promise<void> {
    if (erased === 0) return;
    await this.options.client.send(
      new UpdateCommand({
        TableName: this.options.tableName,
        Key: { request_id: requestId, part: REQUEST_PART },
        // The map is made with the request's start (`started`), so each table's count is a path in it.
        UpdateExpression: 'ADD erased.#table :erased',
        ExpressionAttributeNames: { '#table': table },
        ExpressionAttributeValues: { ':erased': erased },
      }),
    );
  }

  async completeErasure(
    request: PersonRequest & { email: string; address_key: string },
    at: Date,
  ): Promise<void> {
    const { erasure, client, tableName } = this.options;
    if (!erasure) throw new Error('Completing an erasure needs its tables');
    try {
      // The address's own record as the acceptance wrote it, and only that: one written again since
      // (the address came back in during the run: a registry entry, an import, a cc) or an
      // operator's change stays, and keeps the address suppressed.
      await client.send(
        new DeleteCommand({
          TableName: erasure.suppressionsTable,
          Key: { email: request.email },
          ConditionExpression: '#reason = :erased AND suppressed_at = :acceptedAt',
          ExpressionAttributeNames: { '#reason': 'reason' },
          ExpressionAttributeValues: { ':erased': 'erased', ':acceptedAt': request.requested_at },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
    await writeAtomically(
      client,
      {
        Update: {
          TableName: tableName,
          Key: { request_id: request.request_id, part: REQUEST_PART },
          UpdateExpression: 'SET #status = :completed, completed_at = :at REMOVE email',
          ConditionExpression: 'attribute_exists(request_id) AND #status <> :completed',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':completed': 'completed', ':at': at.toISOString() },
        },
      },
      [
        erasure.audit.put({
          action: 'person.erased',
          email: request.address_key,
          actor: { source: 'api', api_key_id: request.api_key_id },
          details: { request_id: request.request_id, erased: request.erased ?? {} },
        }),
      ],
    );
    await this.release(request);
  }

  /** An update of a request not yet complete; on a complete one (a step handed over late) it does nothing. */
  private async updateUnlessComplete(
    requestId: string,
    update: { UpdateExpression: string; ExpressionAttributeValues: Record<string, unknown> },
    /** A further condition; when it fails, nothing is written either. */
    also?: string,
  ): Promise<void> {
    const { UpdateExpression, ExpressionAttributeValues } = update;
    try {
      await this.options.client.send(
        new UpdateCommand({
          TableName: this.options.tableName,
          Key: { request_id: requestId, part: REQUEST_PART },
          UpdateExpression,
          ConditionExpression: `attribute_exists(request_id) AND #status <> :completed${also ? ` AND (${also})` : ''}`,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ...ExpressionAttributeValues, ':completed': 'completed' },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }
}
