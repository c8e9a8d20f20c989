import { pageLimit } from '../cursor';
import { ValidationError } from '../errors';
import { toFieldProblems } from '../http';
import {
  controlCharacter,
  controlCharacterMessage,
  emailAddress,
  type FoundControlCharacter,
  PLACEHOLDER_MAX_LENGTH,
} from '../nonprofits/nonprofit';
import { type Sender, worstCaseFooterBytes } from '../templates/footer';
import { htmlTemplateProblems, worstCaseHtmlBytes } from '../templates/html';
import { compileTemplate, parseTemplate, type TemplateProblem, worstCaseBytes } from '../templates/template';
import * as z from '../zod';

export const MAX_RECIPIENTS = 10_000;
/** SES takes at most 50 recipients a message: the nonprofit and 49 copies. */
export const MAX_CC = 49;
export const MAX_TEMPLATE_BYTES = 100 * 1024;
/** RFC 5322 allows 998 characters on a line, which bounds a subject. */
export const MAX_SUBJECT_LENGTH = 998;

/**
 * `scheduled` while a job with `send_at` waits for its time (nothing enqueued), then `queued`.
 * `queued` until a first outcome, then `processing`; `completed` once every recipient has one. A
 * cancel makes a running job `cancelling` until its messages are drained (each recipient left is
 * recorded `cancelled`), then `cancelled`. `failed` is reserved for a job that could not be carried
 * out as a whole (the API documents it; no path sets it today).
 */
export const JOB_STATUSES = [
  'scheduled',
  'queued',
  'processing',
  'cancelling',
  'completed',
  'cancelled',
  'failed',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/**
 * A job's progress item, as stored. `remaining` counts recipients without an outcome (sent, failed
 * or suppressed); 0 ends the job. It holds no template: every batch updates this item, and DynamoDB bills a write by the
 * item's size, so the content lives in its own item (`JobContent`).
 */
export interface JobRecord {
  job_id: string;
  api_key_id: string;
  status: JobStatus;
  total_emails: number;
  sent: number;
  failed: number;
  /** Recipients not sent because their address is suppressed (absent on jobs from before suppression). */
  suppressed?: number;
  /**
   * Sent emails SES later reported: bounced for good, bounced for now (a full mailbox), marked as
   * spam. Subsets of `sent`, counted once per report; absent until the first.
   */
  bounced?: number;
  transient_bounces?: number;
  complained?: number;
  /** Readers of the job's emails (a cc reader too) who used its unsubscribe link, each once; absent until the first. */
  unsubscribed?: number;
  /** Recipients a cancel kept from being sent (absent until the first). */
  cancelled?: number;
  remaining: number;
  created_at: string;
  updated_at: string;
  started_at?: string;
  completed_at?: string;
  error?: string;
  /** A digest of the request, to tell a replay under an `Idempotency-Key` from a different request. */
  request_hash: string;
  idempotency_key?: string;
  /** Present while the job runs, so the sweeper's sparse index holds only running jobs (see job-status.ts). */
  active?: string;
  /** When a scheduled job's recipients are enqueued (`POST /send-email`'s `send_at`, in UTC). */
  send_at?: string;
  /**
   * Present while the job waits for `send_at`, so the sparse index of scheduled jobs (by `send_at`)
   * holds only those; removed when it starts or is cancelled.
   */
  scheduled?: string;
  /**
   * When the last enqueue of the job's messages has ended at the latest (the enqueuing function's own
   * deadline). Absent on jobs recorded before it existed, whose enqueue ended long ago.
   */
  enqueue_deadline?: string;
  /**
   * When the sweeper first found the queues empty and the job's enqueue settled: it acts on a later
   * run, at least the settling time after, so that a message still on its way (to the dead-letter
   * queue, say) has shown in the counts by then.
   */
  recovery_seen_at?: string;
  /** When a client asked to cancel the job: from then on, no email of it is started. */
  cancel_requested_at?: string;
  /** When the job's retryable failures were last enqueued again (`POST /jobs/{id}/retry`). */
  retried_at?: string;
  /** How many recipients retries enqueued again, in all. */
  retried?: number;
  /** How many retries were made (bounded, as each keeps its Idempotency-Key on the item). */
  retries?: number;
  /** The Idempotency-Keys of the retries made (a replay finds its key here). */
  retry_keys?: Set<string>;
  /** The retry under way: its chunks are written under this token, so two retries never interleave. */
  retry_token?: string;
}

/** Which control characters a template may hold, and how a refusal names the one it found. */
interface ControlRule {
  allowed: string;
  message: (found: FoundControlCharacter) => string;
}

/** A subject becomes a header: a line break in it would start a header of the client's choosing. */
const ONE_LINE: ControlRule = { allowed: '', message: controlCharacterMessage };
/** A body keeps its layout (tabs and line breaks); NUL and the like are never text. */
const BODY: ControlRule = {
  allowed: '\t\n\r',
  message: ({ codePoint, position }) =>
    `Must not contain control characters other than tab, line feed and carriage return (found ${codePoint} at position ${position})`,
};

const count = (n: number): string => n.toLocaleString('en-US');

/** The emails a job sends: one per recipient, and one more per recipient for each cc address. */
export function jobVolume({
  emails,
  cc,
}: {
  emails: readonly unknown[];
  cc?: readonly unknown[] | undefined;
}): number {
  return emails.length * (1 + (cc?.length ?? 0));
}

/**
 * Checks a template field, reporting every bad placeholder with its position, and whatever else
 * `problems` finds in it (an HTML template's scripts, say).
 */
const templateText = (
  what: string,
  maxBytes: number,
  controls: ControlRule,
  problems: (source: string) => TemplateProblem[] = () => [],
) =>
  z
    .string({ message: 'Must be a string' })
    .refine((value) => Buffer.byteLength(value, 'utf8') <= maxBytes, `Must be at most ${maxBytes} bytes`)
    .superRefine((value, context) => {
      const control = controlCharacter(value, controls.allowed);
      if (control) context.addIssue({ code: 'custom', message: controls.message(control) });
      const parsed = parseTemplate(value);
      for (const problem of [...(parsed.ok ? [] : parsed.problems), ...problems(value)])
        context.addIssue({ code: 'custom', message: `Invalid ${what}: ${problem.message}` });
    });

/** The fields of a job request, shared by `POST /send-email` and its preview. */
const sendEmailFields = {
  emails: z
    .array(emailAddress, { message: 'Must be an array of email addresses' })
    .min(1, 'Must name at least one recipient')
    .max(MAX_RECIPIENTS, `Must name at most ${MAX_RECIPIENTS} recipients`),
  template: templateText('template', MAX_TEMPLATE_BYTES, BODY).pipe(z.string().min(1, 'Must not be empty')),
  /**
   * The HTML part, beside the text part `template`: the same placeholders, each value HTML-escaped;
   * no scripts, event handlers or `javascript:` links. With it, each email is multipart/alternative.
   */
  html: templateText('html', MAX_TEMPLATE_BYTES, BODY, htmlTemplateProblems)
    .pipe(z.string().min(1, 'Must not be empty: leave html out to send text only'))
    .optional(),
  subject: templateText('subject', MAX_SUBJECT_LENGTH * 4, ONE_LINE)
    .pipe(
      z
        .string()
        .trim()
        .min(1, 'Must not be empty: leave subject out to send the default subject')
        .max(MAX_SUBJECT_LENGTH, `Must be at most ${MAX_SUBJECT_LENGTH} characters`),
    )
    .optional(),
  cc: z
    .array(emailAddress, { message: 'Must be an array of email addresses' })
    .max(MAX_CC, `Must name at most ${MAX_CC} addresses`)
    .optional(),
  /**
   * When to send: the job is accepted now and its recipients enqueued then. How far ahead it may be
   * is checked against the clock when the job is accepted (`checkSendAt`).
   */
  send_at: z.iso
    .datetime({
      offset: true,
      message:
        'Must be an ISO 8601 date and time with a zone, such as 2026-12-24T09:00:00Z or 2026-12-24T10:00:00+01:00',
    })
    .meta({
      description: 'When to send (1 minute to 30 days ahead); the job is accepted now, `scheduled`',
      example: '2026-12-24T09:00:00Z',
    })
    .optional(),
};

/** How far ahead `send_at` may be: at least a minute (sooner, send now), at most 30 days. */
export const MIN_SEND_AT_LEAD_MS = 60_000;
export const MAX_SEND_AT_LEAD_MS = 30 * 24 * 3600 * 1000;

/** The time a scheduled job starts, in UTC, or a 400 naming `send_at` when it is not 1 minute to 30 days ahead. */
export function checkSendAt(sendAt: string, now: Date): string {
  const at = new Date(sendAt);
  const lead = at.getTime() - now.getTime();
  const problem =
    lead < 0
      ? `Must be in the future (it is ${Math.round(-lead / 1000)} s in the past)`
      : lead < MIN_SEND_AT_LEAD_MS
        ? 'Must be at least one minute ahead: leave send_at out to send now'
        : lead > MAX_SEND_AT_LEAD_MS
          ? 'Must be at most 30 days ahead'
          : undefined;
  if (problem) throw new ValidationError('Invalid request body', [{ field: 'send_at', message: problem }]);
  return at.toISOString();
}

/** What a job request must hold beyond each field: copies within the limit, no recipient twice. */
function refineSendEmail(
  request: { emails: string[]; cc?: string[] | undefined },
  context: z.RefinementCtx,
): void {
  const { emails, cc = [] } = request;
  // Each cc address receives a copy of every email, so copies are sent, and count, as recipients.
  if (cc.length > 0 && jobVolume(request) > MAX_RECIPIENTS) {
    context.addIssue({
      code: 'custom',
      path: ['cc'],
      message:
        `Each email is copied to ${count(cc.length)} cc ${cc.length === 1 ? 'address' : 'addresses'}: ` +
        `${count(emails.length)} recipients × ${count(1 + cc.length)} copies = ${count(jobVolume(request))}, ` +
        `over the limit of ${count(MAX_RECIPIENTS)} per job`,
    });
  }
  const seen = new Map<string, number>();
  emails.forEach((email, index) => {
    const first = seen.get(email);
    if (first === undefined) seen.set(email, index);
    else
      context.addIssue({
        code: 'custom',
        path: ['emails', index],
        message: `Duplicate of emails[${first}] (${email})`,
      });
  });
  // Each reader gets one message of each email: a cc address named twice, or also a recipient,
  // would be a second copy of the same email to the same person.
  const seenCc = new Map<string, number>();
  cc.forEach((address, index) => {
    const first = seenCc.get(address);
    const recipient = seen.get(address);
    if (first !== undefined)
      context.addIssue({
        code: 'custom',
        path: ['cc', index],
        message: `Duplicate of cc[${first}] (${address})`,
      });
    else if (recipient !== undefined)
      context.addIssue({
        code: 'custom',
        path: ['cc', index],
        message: `${address} is also emails[${recipient}]: it would get its own email and a copy of every other`,
      });
    seenCc.set(address, first ?? index);
  });
}

export const sendEmailRequest = z.strictObject(sendEmailFields).superRefine(refineSendEmail);
export type SendEmailRequest = z.output<typeof sendEmailRequest>;

/** An `Idempotency-Key` header's value (also the published contract's). */
export const idempotencyKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, 'Must be printable ASCII without spaces');

/** The `Idempotency-Key` header of a job request, if it has one; a malformed one is a 400. */
export function readIdempotencyKey(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const key = idempotencyKey.safeParse(raw);
  if (!key.success) {
    throw new ValidationError('Invalid Idempotency-Key header', [
      { field: 'header.Idempotency-Key', message: key.error.issues[0]?.message ?? 'Invalid' },
    ]);
  }
  return key.data;
}

/** Emails a preview renders at most. */
export const MAX_PREVIEWS = 5;

/**
 * The body of `POST /send-email/preview`: exactly a `/send-email` body, so it is refused for the same
 * reasons in the same words, and optionally which of its recipients to render (`readPreviewFor`,
 * read once the rest passed, so a bad `preview_for` never hides the refusals `/send-email` would give).
 */
export const previewEmailRequest = z
  .strictObject({ ...sendEmailFields, preview_for: z.unknown().optional() })
  .superRefine(refineSendEmail);

const previewFor = z
  .array(emailAddress, { message: 'Must be an array of email addresses' })
  .min(1, 'Must name at least one recipient')
  .max(MAX_PREVIEWS, `Must name at most ${MAX_PREVIEWS} recipients`);

/** The recipients a preview renders: those named in `preview_for` (each once), or the first ones. */
export function readPreviewFor(request: PreviewEmailRequest): string[] {
  if (request.preview_for === undefined) return request.emails.slice(0, MAX_PREVIEWS);
  const parsed = previewFor.safeParse(request.preview_for);
  if (!parsed.success) {
    throw new ValidationError('Invalid request body', toFieldProblems(parsed.error.issues, 'preview_for'));
  }
  const recipients = new Set(request.emails);
  const strangers = parsed.data.flatMap((email, index) =>
    recipients.has(email)
      ? []
      : [{ field: `preview_for.${index}`, message: `Not one of the job's recipients (${email})` }],
  );
  if (strangers.length > 0) throw new ValidationError('Invalid request body', strangers);
  return [...new Set(parsed.data)];
}
export type PreviewEmailRequest = z.output<typeof previewEmailRequest>;

/**
 * The most bytes (UTF-8) an email of this request can render to: subject, text part, HTML part
 * and the footers, each placeholder at its field's longest (and, in HTML, each character escaped).
 */
export function worstCaseRenderedBytes(
  request: Pick<SendEmailRequest, 'template' | 'subject' | 'html'>,
  sender: Sender,
): number {
  const worst = (source: string) => worstCaseBytes(compileTemplate(source), PLACEHOLDER_MAX_LENGTH);
  return (
    worst(request.template) +
    (request.subject === undefined ? 0 : worst(request.subject)) +
    (request.html === undefined
      ? 0
      : worstCaseHtmlBytes(compileTemplate(request.html), PLACEHOLDER_MAX_LENGTH)) +
    worstCaseFooterBytes(sender, request.html !== undefined)
  );
}

/**
 * Refuses a job whose emails could render larger than `maxRenderedBytes` (UTF-8, everything an
 * email holds but its headers), with each placeholder at its field's longest: the consumer never
 * meets an email too large to send, and the refusal comes before anything is stored. The request
 * is one `sendEmailRequest` accepted.
 */
export function checkRenderedSize(
  request: Pick<SendEmailRequest, 'template' | 'subject' | 'html'>,
  settings: Sender & { maxRenderedBytes: number },
): void {
  const bytes = worstCaseRenderedBytes(request, settings);
  const limitBytes = settings.maxRenderedBytes;
  if (bytes > limitBytes) {
    throw new ValidationError('Invalid request body', [
      {
        field: request.html === undefined ? 'template' : 'html',
        message:
          `Rendered emails could reach ${count(bytes)} bytes (subject, ${request.html === undefined ? 'body' : 'text and HTML parts'} and footer with each placeholder at ` +
          `its field's longest), over the limit of ${count(limitBytes)} bytes`,
      },
    ]);
  }
}

/** What a job sends: the same for every recipient, written once, read by consumers once per job. */
export interface JobContent {
  template: string;
  /** The HTML part's template; null (or absent, on jobs from before HTML) for text-only emails. */
  html?: string | null | undefined;
  subject: string | null;
  cc: string[];
  /** When the job was accepted (its `created_at`), for the consumers' latency metrics. */
  accepted_at: string;
  /** Whose recipient quota, on which UTC day, counted the job: a cancelled recipient is given back there. */
  quota?: { api_key_id: string; day: string } | undefined;
  /** The partition keys the job's deliveries are spread over (see `deliveryShards`); absent, one. */
  delivery_shards?: number | undefined;
}

export const jobId = z.uuid({ message: 'Must be a job id' });

/** The query of `GET /jobs`. */
export const jobListQuery = z.strictObject({
  status: z.enum(JOB_STATUSES, { message: `Must be one of ${JOB_STATUSES.join(', ')}` }).optional(),
  limit: pageLimit(20, 100),
  cursor: z.string().min(1, 'Must not be empty').optional(),
});
