import { type Page, pageLimit } from '../cursor';
import { storedEmailAddress } from '../nonprofits/nonprofit';
import * as z from '../zod';

/**
 * The audit trail: what changed the registry, the suppression list and the sender, who did it and
 * why. A record is written in the same transaction as the change it records (an import, many
 * writes, is recorded once it is done), is never updated or deleted by any function (the stack
 * grants `PutItem` only), and expires after the deployment's `auditRetentionDays`.
 */
export const AUDIT_ACTIONS = [
  'nonprofit.created',
  'nonprofit.updated',
  'nonprofit.deleted',
  'nonprofits.imported',
  'suppression.added',
  'suppression.lifted',
  'sending.paused',
  'sending.resumed',
  'person.erasure_requested',
  'person.erased',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/**
 * The attributes of a record that may name a person (whom it is about, the reason given, what it
 * replaced): an erasure rewrites the address to its key in these, and may change nothing else.
 */
export const AUDIT_REWRITABLE = ['email', 'reason', 'details'] as const;

/**
 * What made a change: a request with an API key (`api`), a person's own unsubscribe link, SES's
 * report of a bounce or complaint, the reputation guard's pause, or the configuration set turned
 * on outside this API (the console, the CLI). Only `api` names a key as the actor.
 */
export const AUDIT_SOURCES = [
  'api',
  'unsubscribe_link',
  'ses_feedback',
  'reputation_guard',
  'outside_api',
] as const;
export type AuditSource = (typeof AUDIT_SOURCES)[number];

/** Who made a change, as the code that makes it knows. */
export interface Actor {
  source: AuditSource;
  /** The key of the request (with `source: api`). */
  api_key_id?: string | undefined;
}

/** An audit record as it is written: the change, its actor, and what the change replaced or counted. */
export interface AuditEntry {
  action: AuditAction;
  /** The address the change concerns (absent for an import or a change of the sender). */
  email?: string | undefined;
  actor: Actor;
  /** Why, in the actor's words (a lift's, a resume's). */
  reason?: string | undefined;
  /** What the change replaced or counted: the previous suppression, the fields an update changed, an import's counts. */
  details?: Record<string, unknown> | undefined;
}

export interface AuditRecord extends AuditEntry {
  id: string;
  at: string;
}

/** Adds a record on its own, for a change made of many writes (an import), once it is done. */
export interface AuditTrailWriter {
  append(entry: AuditEntry): Promise<void>;
}

/**
 * A time bound of `GET /audit`: ISO 8601 with a zone, within years 1970 to 9999 (in UTC), so it
 * sorts as the records' keys do.
 */
const auditTime = z.iso
  .datetime({ offset: true, message: 'Must be an ISO 8601 date and time with a zone' })
  .refine(
    (value) => {
      const at = Date.parse(value);
      return at >= 0 && at <= Date.parse('9999-12-31T23:59:59.999Z');
    },
    { message: 'Must be between 1970 and 9999' },
  );

/** The trail's records, newest first (`GET /audit`). */
export interface AuditTrailReader {
  list(query: AuditQuery): Promise<Page<AuditRecord>>;
}

/** The query of `GET /audit`: newest first, optionally one action, one address, a time range. */
export const auditQuery = z
  .strictObject({
    action: z.enum(AUDIT_ACTIONS, { message: `Must be one of ${AUDIT_ACTIONS.join(', ')}` }).optional(),
    email: storedEmailAddress.optional(),
    since: auditTime.optional(),
    until: auditTime.optional(),
    limit: pageLimit(50, 100),
    cursor: z.string().min(1, 'Must not be empty').optional(),
  })
  .refine(
    (query) =>
      query.since === undefined ||
      query.until === undefined ||
      Date.parse(query.since) <= Date.parse(query.until),
    { path: ['since'], message: 'Must not be after until' },
  );
export type AuditQuery = z.output<typeof auditQuery>;
