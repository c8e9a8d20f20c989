import { pageLimit } from '../cursor';
import { GoneError } from '../errors';
import { compileTemplate } from '../templates/template';
import * as z from '../zod';
import {
  type DeliveryFeedback,
  type DeliveryReader,
  type DeliveryRecord,
  hasOutcome,
  type OutcomeStatus,
} from './deliveries';
import type { JobContent, JobRecord } from './job';
import type { JobContentStore } from './job-store';
import {
  type CompiledTemplates,
  forReader,
  type RenderSettings,
  renderEmail,
  STORED_LINK,
} from './render-email';
import type { RenderedCopy, RenderedEmailStore, RenderSnapshot } from './rendered-emails';

export const EMAIL_STATUSES = ['pending', 'sent', 'failed', 'suppressed', 'cancelled'] as const;
export type EmailStatus = (typeof EMAIL_STATUSES)[number];

/** One recipient of a job as `GET /jobs/{job_id}/emails` shows it. */
export interface JobEmail {
  to: string;
  cc: string[];
  /** As rendered, while the deployment keeps rendered emails and this one's retention lasts; otherwise null. */
  subject: string | null;
  /** The text part, footer included; the footer's link stands for each reader's own (`STORED_LINK`). */
  body: string | null;
  /** The HTML part as a string (never rendered by this API), footer included; null without one. */
  html: string | null;
  status: EmailStatus;
  /** The transport's id of the sent message (SES's MessageId), to find it in SES's events. */
  message_id: string | null;
  attempts: number;
  error: string | null;
  sent_at: string | null;
  /** What SES reported after sending (bounces, complaints), oldest first; empty when nothing. */
  feedback: DeliveryFeedback[];
  /**
   * Each cc address's own message (every reader gets a copy of their own, with their own
   * unsubscribe link): its message id once SES took it, or why SES refused it.
   */
  copies: JobEmailCopy[];
}

export interface JobEmailCopy {
  to: string;
  message_id: string | null;
  error: string | null;
}

/** The copies of a recipient's email as its delivery record tells them. */
const copiesOf = (cc: readonly string[], outcome: DeliveryRecord | undefined): JobEmailCopy[] =>
  cc.map((to) => ({
    to,
    message_id: outcome?.copy_ids?.[to] ?? null,
    error: outcome?.copy_errors?.[to] ?? null,
  }));

/**
 * Bytes of emails one page holds at most, measured as they leave the function: the page is JSON
 * inside the Lambda proxy response's JSON string, so escaping can nearly double it, and Lambda
 * fails any response over 6 MB. One email alone always fits (a delivery item is at most 400 KB).
 */
export const MAX_PAGE_BYTES = 2_500_000;
/** What a value adds to a Lambda proxy answer: JSON inside the response's JSON string. */
export const answerBytes = (value: unknown) =>
  Buffer.byteLength(JSON.stringify(JSON.stringify(value)), 'utf8');

/** Recipients examined at most per request while a status filter skips others. */
const MAX_SCANNED_PER_REQUEST = 1_000;

export interface ListJobEmailsDependencies {
  contents: Pick<JobContentStore, 'recipients' | 'content'>;
  deliveries: Pick<DeliveryReader, 'getMany'>;
  /** Absent when the deployment does not keep rendered emails. */
  rendered?: Pick<RenderedEmailStore, 'getSnapshots' | 'getMany'> | undefined;
  /** How the consumer renders (the sender's footer, the default subject): emails are rendered again from their snapshots. */
  settings: RenderSettings;
}

/** The subject and parts of a recipient's email as the reader shows them, or nulls when not kept. */
type Shown = Pick<JobEmail, 'subject' | 'body' | 'html'>;
const NOT_KEPT: Shown = { subject: null, body: null, html: null };

/**
 * The emails of these recipients as they were sent to them, footer included (with `STORED_LINK`):
 * rendered again from the job's templates and the snapshot each outcome names, or, for emails
 * stored whole before snapshots, read as stored.
 */
async function shownEmails(
  deps: ListJobEmailsDependencies,
  jobId: string,
  content: JobContent | undefined,
  outcomes: Map<string, DeliveryRecord>,
): Promise<Map<string, Shown>> {
  const shown = new Map<string, Shown>();
  if (!deps.rendered || !content) return shown;
  const recorded = [...outcomes.values()].filter(hasOutcome);
  const ids = recorded.flatMap((outcome) => (outcome.snapshot ? [outcome.snapshot] : []));
  const whole = recorded.filter((outcome) => !outcome.snapshot).map((outcome) => outcome.recipient);
  const [snapshots, stored] = await Promise.all([
    ids.length > 0 ? deps.rendered.getSnapshots(jobId, ids) : new Map<string, RenderSnapshot>(),
    whole.length > 0 ? deps.rendered.getMany(jobId, whole) : new Map<string, RenderedCopy>(),
  ]);
  for (const [recipient, copy] of stored)
    shown.set(recipient, { subject: copy.subject, body: copy.body, html: copy.html ?? null });
  if (snapshots.size === 0) return shown;
  const compiled: CompiledTemplates = {
    body: compileTemplate(content.template),
    html: content.html ? compileTemplate(content.html) : null,
    subject: content.subject ? compileTemplate(content.subject) : null,
  };
  for (const outcome of recorded) {
    const values = outcome.snapshot
      ? snapshots.get(outcome.snapshot)?.nonprofits[outcome.recipient]
      : undefined;
    if (!values) continue;
    const body = renderEmail(compiled, { email: outcome.recipient, ...values }, deps.settings);
    if ('tooLarge' in body) continue;
    const { subject, text, html } = forReader(body, deps.settings, outcome.recipient, STORED_LINK);
    shown.set(outcome.recipient, { subject, body: text, html: html ?? null });
  }
  return shown;
}

/**
 * Every recipient of a job in its stored (sorted) order, each with its outcome, or `pending` while it
 * has none. Pages are windows of the recipient list, so the cursor is a position in it; with a status
 * filter, a page may hold fewer than `limit` entries (at most 1,000 recipients are read per request)
 * and `nextOffset` continues the scan. A page also ends early at `MAX_PAGE_BYTES`.
 */
export async function listJobEmails(
  deps: ListJobEmailsDependencies,
  job: JobRecord,
  query: { status?: EmailStatus | undefined; limit: number; offset: number },
): Promise<{ items: JobEmail[]; nextOffset: number | null }> {
  const emails: JobEmail[] = [];
  const content = await deps.contents.content(job.job_id);
  // Written before the job, so only its retention removes it, and the recipient list with it.
  if (!content)
    throw new GoneError(
      `The emails of job ${job.job_id} are no longer kept: a job's ledger and recipient list are removed ledgerRetentionDays after it starts; its counts stay.`,
    );
  const { cc } = content;
  // A cancelled job's recipients all have an outcome, `cancelled` among them, except those of a job
  // cancelled while it was scheduled: nothing was enqueued, so none has a delivery. They were cancelled too.
  const withoutOutcome: EmailStatus = job.status === 'cancelled' ? 'cancelled' : 'pending';
  let offset = query.offset;
  const scanLimit = query.status ? MAX_SCANNED_PER_REQUEST : query.limit;
  let scanned = 0;
  let bytes = 0;
  let full = false;
  while (!full && offset < job.total_emails && emails.length < query.limit && scanned < scanLimit) {
    const window = Math.min(query.status ? 100 : query.limit - emails.length, scanLimit - scanned);
    const recipients = await deps.contents.recipients(job.job_id, offset, window);
    if (recipients.length === 0) break;
    const outcomes = await deps.deliveries.getMany(job.job_id, recipients);
    const shown = await shownEmails(deps, job.job_id, content, outcomes);
    for (const recipient of recipients) {
      const outcome = outcomes.get(recipient);
      const copy = shown.get(recipient) ?? NOT_KEPT;
      // A claim under way (`sending`), a failure a retry queued again, or copies sent before the
      // recipient's own email, is no outcome: the email is pending.
      const email: JobEmail =
        outcome && hasOutcome(outcome)
          ? {
              to: recipient,
              cc: outcome.cc ?? cc,
              ...copy,
              status: outcome.status as OutcomeStatus,
              message_id: outcome.message_id ?? null,
              attempts: outcome.attempts ?? 0,
              error: outcome.error ?? null,
              // The hand-over time: when SES took the email. Outcomes are recorded per batch, later.
              sent_at:
                outcome.status === 'sent' ? (outcome.handed_over_at ?? outcome.processed_at ?? null) : null,
              feedback: outcome.feedback ?? [],
              // Copies are sent before the recipient's own email: a cancelled or suppressed one may have some out.
              copies:
                outcome.status === 'sent' ||
                outcome.status === 'failed' ||
                Object.keys(outcome.copy_ids ?? {}).length > 0
                  ? copiesOf(outcome.cc ?? cc, outcome)
                  : [],
            }
          : {
              to: recipient,
              cc,
              subject: null,
              body: null,
              html: null,
              status: withoutOutcome,
              message_id: null,
              attempts: outcome?.attempts ?? 0,
              error: null,
              sent_at: null,
              feedback: [],
              copies: [],
            };
      if (!query.status || email.status === query.status) {
        const size = answerBytes(email);
        // The page ends before the email that would overflow it; the cursor starts there next time.
        if (emails.length > 0 && bytes + size > MAX_PAGE_BYTES) {
          full = true;
          break;
        }
        emails.push(email);
        bytes += size;
      }
      offset++;
      scanned++;
      if (emails.length === query.limit) break;
    }
  }
  const nextOffset = offset < job.total_emails ? offset : null;
  return { items: emails, nextOffset };
}

/** The query of `GET /jobs/{job_id}/emails`. */
export const jobEmailsQuery = z.strictObject({
  status: z.enum(EMAIL_STATUSES, { message: `Must be one of ${EMAIL_STATUSES.join(', ')}` }).optional(),
  limit: pageLimit(50, 100),
  cursor: z.string().min(1, 'Must not be empty').optional(),
});
