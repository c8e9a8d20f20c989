import type { Page } from '../cursor';
import { pageLimit } from '../cursor';
import type { FeedbackKind } from '../jobs/feedback-kinds';
import type { Nonprofit } from '../nonprofits/nonprofit';
import type { Suppression } from '../suppressions/suppression';
import * as z from '../zod';

/**
 * A person's requests about the data held on them: an export of everything on record to or about
 * one address (GDPR Art. 15), and its erasure (Art. 17). A request is accepted by the API (`202`),
 * worked in the background by a worker fed from a queue, and read back with
 * `GET /people/requests/{id}`.
 *
 * The work is a walk of tables in parallel segments, each resumed from where the last step
 * stopped, so no invocation outlives its timeout and the send path does no extra read or write.
 * Every step is idempotent (findings are keyed by what they found, segments finished are a set,
 * an item erased no longer mentions the address), because the queue may hand a step over twice.
 */

export const PERSON_REQUEST_KINDS = ['export', 'erasure'] as const;
export type PersonRequestKind = (typeof PERSON_REQUEST_KINDS)[number];

export const PERSON_REQUEST_STATUSES = ['queued', 'running', 'completed'] as const;
export type PersonRequestStatus = (typeof PERSON_REQUEST_STATUSES)[number];

/**
 * Segments the ledger is walked in, at once: each is one message at a time, so at most this many
 * Scan pages are read in parallel (the worker's concurrency), whatever the table's size.
 */
export const LEDGER_SEGMENTS = 4;

/**
 * Days a request and what it found are kept: an export holds the person's data, so it is kept
 * only long enough to be read, then removed by DynamoDB's TTL.
 */
export const PERSON_REQUEST_RETENTION_DAYS = 7;

/**
 * How long a request holds its address against a second one of its kind. Past it (a run that
 * died, its messages dead-lettered), a new request may start; the held one stays readable.
 */
export const REQUEST_HOLD_MS = 60 * 60_000;

/** Time a walk step leaves itself to write what it found and hand over the rest, before its timeout. */
export const STEP_MARGIN_MS = 15_000;

/**
 * The tables an erasure walks, in this order of segments; the registry entry and the suppression
 * record are handled when it is accepted and when it completes.
 */
export const ERASURE_TABLES = [
  'deliveries',
  'job_contents',
  'rendered_emails',
  'audit',
  'outbox',
  'person_requests',
  'suppressions',
] as const;
export type ErasureTable = (typeof ERASURE_TABLES)[number];

/**
 * A walk's segments are counted in a set shared by every walk of a request: walk `w`'s segment `n`
 * is counted as `w * WALK_SEGMENT_SPACE + n` (every table's segments are fewer), so a message of an
 * earlier walk, handed over late, never counts towards the current one.
 */
export const WALK_SEGMENT_SPACE = 10_000;

/**
 * Walks an erasure makes at most: each further one follows a scheduled job that ran during the
 * last. Past it, the erasure completes, and logs the jobs it left (see README, "What it does not reach").
 */
export const MAX_WALKS = 5;

/**
 * Seconds an erasure's start waits after it is accepted: a job accepted in that second may have
 * read the registry entry, deleted at acceptance, from an eventually consistent read. Its start
 * then finds that job running and waits for it too.
 */
export const ERASURE_START_DELAY_SECONDS = 5;

export interface PersonRequest {
  request_id: string;
  kind: PersonRequestKind;
  /** The address: an erasure's is removed when it completes, and only `address_key` stays. */
  email?: string;
  /** An erasure's: the key that stands for the address wherever it was (core/people/address-keys). */
  address_key?: string;
  /** An erasure's: the jobs running when it started, whose emails it waits out before it walks. */
  waiting_for?: string[];
  /**
   * An erasure's: walks of the tables begun, and when the last began. A walk ends by looking at the
   * scheduled jobs noted at the start (`scheduled_jobs`): one that ran during the walk may have
   * written the address behind it, so the erasure waits it out and walks again (see `MAX_WALKS`).
   */
  walks?: number;
  walk_started_at?: string;
  /**
   * An erasure's: the walk it has asked for (1 at its start; the next after a walk that scheduled
   * jobs ran behind). A step begins it only while `walks` is below it, so a step handed over twice
   * never begins a walk nobody asked for.
   */
  walk_requested?: number;
  /** An erasure's: the jobs scheduled (not started) when it started, accepted before it. */
  scheduled_jobs?: string[];
  /** An erasure's: items it rewrote or removed, by table. */
  erased?: Partial<Record<ErasureTable, number>>;
  status: PersonRequestStatus;
  requested_at: string;
  /** The key that asked. */
  api_key_id: string;
  completed_at?: string;
  /** What holds the address against a second request of its kind (released when it completes). */
  hold?: string;
  /** Segments of the walk finished, of how many (`0` of `0` until the walk starts). */
  segments_done: number;
  segments_total: number;
  /** The registry entry and the suppression record as they were when the walk started. */
  nonprofit?: Nonprofit | null;
  suppression?: Suppression | null;
}

/** One email on record to the address, or a copy of one cc'd to it, as an export lists it. */
export interface EmailOnRecord {
  job_id: string;
  /** `recipient`: the email was to the address; `cc`: the address had a copy of it. */
  role: 'recipient' | 'cc';
  /** The job's subject (its template, as sent), `null` once the job's content is past retention. */
  subject: string | null;
  /**
   * The delivery's outcome (`processing` while it is being sent); a cc copy: `sent`, `failed`, or
   * `not_sent` (the email itself was suppressed, cancelled or failed).
   */
  status: string;
  sent_at: string | null;
  message_id: string | null;
  /** What SES reported of the email afterwards (a cc copy: only reports that name the address). */
  feedback: { type: FeedbackKind; at: string; detail: string }[];
}

/** A finding, with the key it is stored under: the same email found twice is stored once. */
export interface Finding {
  key: string;
  email: EmailOnRecord;
}

/** Where a segment's walk stands: its number, and the key to resume after (none: from the start). */
export interface SegmentPosition {
  segment: number;
  segments: number;
  after?: Record<string, unknown> | undefined;
}

/**
 * The worker's messages: start a request; (an erasure) look again whether the jobs it waits for
 * ended; walk a segment of a table (the ledger, for an export) on from a position.
 */
export const personRequestMessage = z
  .discriminatedUnion('step', [
    z.strictObject({ step: z.literal('start'), request_id: z.uuid() }),
    z.strictObject({ step: z.literal('wait'), request_id: z.uuid() }),
    z.strictObject({
      step: z.literal('walk'),
      request_id: z.uuid(),
      table: z.enum(ERASURE_TABLES).optional(),
      /** An erasure's: which walk of the tables (see `WALK_SEGMENT_SPACE`). */
      walk: z.number().int().min(1).optional(),
      segment: z.number().int().min(0),
      segments: z.number().int().min(1).max(1_000),
      after: z.record(z.string(), z.unknown()).optional(),
    }),
  ])
  .refine((message) => message.step !== 'walk' || message.segment < message.segments, {
    message: 'segment must be below segments',
  });
export type PersonRequestMessage = z.output<typeof personRequestMessage>;

/** The query of `GET /people/requests/{id}`: the page of an export's emails. */
export const personRequestQuery = z.strictObject({
  limit: pageLimit(100, 1_000),
  cursor: z.string().min(1, 'Must not be empty').optional(),
});
export type PersonRequestQuery = z.output<typeof personRequestQuery>;

/**
 * The hold of a request of a kind on an address, the id of an item beside the requests: an
 * export's names the address, an erasure's its key (no erasure stores the address past its run).
 */
export const holdOf = (kind: PersonRequestKind, addressOrKey: string) => `hold#${kind}#${addressOrKey}`;

export interface NewPersonRequest {
  request_id: string;
  kind: PersonRequestKind;
  email: string;
  api_key_id: string;
  requested_at: Date;
  /** What holds the address against a second request of the kind (an erasure's names no address). */
  hold: string;
  /** An erasure's key for the address: accepting it suppresses the address and deletes its entry. */
  address_key?: string;
  /** An export's: the hold of an erasure of the address; while it is held, the export is refused. */
  unless_held?: string;
}

/** A request recorded, or the request under way that holds the address (of its kind, or an erasure). */
export type CreatedRequest = { created: true } | { created: false; held_by: string; kind: PersonRequestKind };

/** The requests table: each request, its findings, and the hold on its address while it runs. */
export interface PersonRequestStore {
  /**
   * Records a request and holds its address for its kind; when a request of that kind holds it
   * already (or, for an export, an erasure of the address), records nothing and answers that
   * request's id and kind.
   */
  create(request: NewPersonRequest): Promise<CreatedRequest>;
  /** Undoes `create` of a request whose start could not be queued: nothing of it is left. */
  discard(request: NewPersonRequest): Promise<void>;
  get(requestId: string): Promise<PersonRequest | undefined>;
  findings(requestId: string, page: PersonRequestQuery): Promise<Page<EmailOnRecord>>;
  /**
   * Marks the walk started over `segments` (idempotent): an export's with the records read at its
   * start; an erasure's as its walk number `walk`, begun `at`, with its counts made.
   */
  started(
    requestId: string,
    start: { segments: number } & (
      | { nonprofit: Nonprofit | null; suppression: Suppression | null }
      | { walk: number; at: Date }
    ),
  ): Promise<void>;
  addFindings(requestId: string, findings: readonly Finding[]): Promise<void>;
  /**
   * Counts a segment of a walk finished (a set: twice is once); answers whether every segment of
   * the request's current walk is (see `WALK_SEGMENT_SPACE`; an export's one walk is walk 0).
   */
  segmentDone(requestId: string, walk: number, segment: number): Promise<{ allDone: boolean }>;
  /** Completes the request and releases its address. */
  complete(request: PersonRequest, at: Date): Promise<void>;
  /** Releases the request's hold on its address, if it still holds it (idempotent). */
  release(request: PersonRequest): Promise<void>;
  /**
   * An erasure's: the jobs it waits out; at its start, also the scheduled jobs it looks at after
   * each walk; and the walk it asks for once they have ended (`walk_requested`).
   */
  waitFor(
    requestId: string,
    jobIds: readonly string[],
    next?: { scheduled?: readonly string[]; walk: number },
  ): Promise<void>;
  /**
   * Keeps a request under way from expiring: its hold on the address and its records' retention
   * run again from now (a request complete, or whose hold another took, is left as it is).
   */
  keepAlive(request: PersonRequest): Promise<void>;
  /** An erasure's: adds to its count of items erased from a table. */
  countErased(requestId: string, table: ErasureTable, erased: number): Promise<void>;
  /**
   * Completes an erasure: the address's own suppression gives way to its key's (kept since the
   * acceptance), the request keeps the key and loses the address, the audit trail records it, and
   * the hold is released.
   */
  completeErasure(request: PersonRequest & { email: string; address_key: string }, at: Date): Promise<void>;
}

/** The tables, walked for an erasure a segment at a time. */
export interface Eraser {
  /** The tables this deployment has (the rendered emails' only where it keeps them). */
  tables(): ErasureTable[];
  walk(
    table: ErasureTable,
    person: { email: string; key: string; requestId: string },
    position: SegmentPosition,
    timeLeft: () => boolean,
  ): Promise<{ erased: number; next?: Record<string, unknown> | undefined }>;
}

/** The queue that carries the worker's steps. */
export interface PersonRequestQueue {
  /** Sends the messages, visible after `delaySeconds` (at most 900, SQS's limit). */
  send(messages: readonly PersonRequestMessage[], delaySeconds?: number): Promise<void>;
}

/** The ledger, walked a segment at a time for one address. */
export interface LedgerSearch {
  /**
   * Reads the segment on from its position while `timeLeft()` holds (at least one page), gives
   * what each page found to `store` before the next, and answers where to resume (`undefined`: the
   * segment is finished).
   */
  walk(
    email: string,
    position: SegmentPosition,
    timeLeft: () => boolean,
    store: (found: readonly Finding[]) => Promise<void>,
  ): Promise<{ next?: Record<string, unknown> | undefined }>;
}
