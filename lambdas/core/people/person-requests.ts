import type { Page } from '../cursor';
import { pageLimit } from '../cursor';
import type { FeedbackKind } from '../jobs/feedback-kinds';
import type { Nonprofit } from '../nonprofits/nonprofit';
import type { Suppression } from '../suppressions/suppression';
import * as z from '../zod';

/**
 * A person's requests about the data held on them (GDPR Art. 15): an export of everything on
 * record to or about one address. A request is accepted by the API (`202`), worked in the
 * background by a worker fed from a queue, and read back with `GET /people/requests/{id}`.
 *
 * The work is a walk of the ledger in parallel segments, each resumed from where the last step
 * stopped, so no invocation outlives its timeout and the send path does no extra read or write.
 * Every step is idempotent (findings are keyed by what they found, segments finished are a set),
 * because the queue may hand a step over twice.
 */

export const PERSON_REQUEST_KINDS = ['export'] as const;
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

export interface PersonRequest {
  request_id: string;
  kind: PersonRequestKind;
  email: string;
  status: PersonRequestStatus;
  requested_at: string;
  /** The key that asked. */
  api_key_id: string;
  completed_at?: string;
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
  /** The delivery's outcome (`processing` while it is being sent); a cc copy: `sent` or `failed`. */
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

/** The worker's messages: start a request, or walk a segment of the ledger on from a position. */
export const personRequestMessage = z.discriminatedUnion('step', [
  z.strictObject({ step: z.literal('start'), request_id: z.uuid() }),
  z.strictObject({
    step: z.literal('walk'),
    request_id: z.uuid(),
    segment: z.number().int().min(0),
    segments: z.number().int().min(1).max(1_000),
    after: z.record(z.string(), z.unknown()).optional(),
  }),
]);
export type PersonRequestMessage = z.output<typeof personRequestMessage>;

/** The query of `GET /people/requests/{id}`: the page of an export's emails. */
export const personRequestQuery = z.strictObject({
  limit: pageLimit(100, 1_000),
  cursor: z.string().min(1, 'Must not be empty').optional(),
});
export type PersonRequestQuery = z.output<typeof personRequestQuery>;

export interface NewPersonRequest {
  request_id: string;
  kind: PersonRequestKind;
  email: string;
  api_key_id: string;
  requested_at: Date;
}

/** The requests table: each request, its findings, and the hold on its address while it runs. */
export interface PersonRequestStore {
  /**
   * Records a request and holds its address for its kind; when a request of that kind holds it
   * already, records nothing and answers that request's id.
   */
  create(request: NewPersonRequest): Promise<{ created: true } | { created: false; held_by: string }>;
  /** Undoes `create` of a request whose start could not be queued: nothing of it is left. */
  discard(request: NewPersonRequest): Promise<void>;
  get(requestId: string): Promise<PersonRequest | undefined>;
  findings(requestId: string, page: PersonRequestQuery): Promise<Page<EmailOnRecord>>;
  /** Marks the walk started over `segments`, with the records read at its start (idempotent). */
  started(
    requestId: string,
    start: { segments: number; nonprofit: Nonprofit | null; suppression: Suppression | null },
  ): Promise<void>;
  addFindings(requestId: string, findings: readonly Finding[]): Promise<void>;
  /** Counts a segment finished (a set: twice is once); answers whether every segment is. */
  segmentDone(requestId: string, segment: number): Promise<{ allDone: boolean }>;
  /** Completes the request and releases its address. */
  complete(request: PersonRequest, at: Date): Promise<void>;
}

/** The queue that carries the worker's steps. */
export interface PersonRequestQueue {
  send(messages: readonly PersonRequestMessage[]): Promise<void>;
}

/** The ledger, walked a segment at a time for one address. */
export interface LedgerSearch {
  /**
   * Reads the segment on from its position while `timeLeft()` holds (at least one page), and
   * answers what it found and where to resume (`undefined`: the segment is finished).
   */
  walk(
    email: string,
    position: SegmentPosition,
    timeLeft: () => boolean,
  ): Promise<{ found: Finding[]; next?: Record<string, unknown> | undefined }>;
}
