import { AUDIT_ACTIONS, AUDIT_SOURCES } from './audit/audit';
import type { Page } from './cursor';
import { FEEDBACK_KINDS } from './jobs/feedback-kinds';
import { JOB_STATUSES, type JobContent, type JobRecord } from './jobs/job';
import { EMAIL_STATUSES } from './jobs/job-emails';
import { STORED_LINK } from './jobs/render-email';
import {
  type EmailOnRecord,
  PERSON_REQUEST_KINDS,
  PERSON_REQUEST_STATUSES,
  type PersonRequest,
} from './people/person-requests';
import { SUPPRESSION_REASONS } from './suppressions/suppression';
import * as z from './zod';

/**
 * What the routes answer, as zod schemas: the published contract (`contract/openapi.ts` renders
 * them into openapi.json beside the request schemas the handlers validate with), and what the
 * end-to-end tests hold every answer to. A field a handler adds and this file lacks fails those tests.
 */

const timestamp = z.iso.datetime().meta({ example: '2026-11-28T12:00:00.000Z' });
const cursor = z
  .string()
  .nullable()
  .meta({ description: 'Pass as `cursor` for the next page; null on the last.' });
const count = z.number().int().nonnegative();

export const fieldProblem = z.object({ field: z.string(), message: z.string() }).meta({ id: 'FieldProblem' });

export const errorBody = z
  .object({
    message: z.string(),
    code: z
      .string()
      .optional()
      .meta({ description: "The application's stable code; API Gateway's own errors have none." }),
    details: z.array(fieldProblem).optional(),
    details_total: count.optional(),
  })
  .meta({ id: 'Error' });

export const quotaExceeded = errorBody
  .extend({
    code: z.literal('QUOTA_EXCEEDED'),
    limit: count,
    remaining: count,
    requested: count,
    resets_at: timestamp,
  })
  .meta({ id: 'QuotaExceeded' });

export const nonprofit = z
  .object({
    email: z.string(),
    domain: z.string(),
    name: z.string(),
    address: z.string(),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .meta({ id: 'Nonprofit' });

export const nonprofitPage = z
  .object({ nonprofits: z.array(nonprofit), next_cursor: cursor })
  .meta({ id: 'NonprofitPage' });

export const importResult = z
  .object({
    created: count,
    updated: count,
    exists: count,
    invalid: count,
    rows: z.array(
      z.union([
        z.object({ row: count, email: z.string(), status: z.enum(['created', 'exists', 'updated']) }),
        z.object({
          row: count,
          email: z.string().nullable(),
          status: z.literal('invalid'),
          details: z.array(fieldProblem),
          details_total: count,
        }),
      ]),
    ),
  })
  .meta({ id: 'ImportResult' });

export const suppression = z
  .object({
    email: z.string(),
    reason: z.enum(SUPPRESSION_REASONS),
    suppressed_at: timestamp,
    job_id: z.string().optional(),
    api_key_id: z.string().optional(),
    note: z.string().optional(),
  })
  .meta({ id: 'Suppression' });

export const suppressionPage = z
  .object({ suppressions: z.array(suppression), next_cursor: cursor })
  .meta({ id: 'SuppressionPage' });

export const auditRecord = z
  .object({
    id: z.uuid(),
    at: timestamp,
    action: z.enum(AUDIT_ACTIONS),
    email: z.string().optional().meta({ description: 'The address the change concerns' }),
    actor: z.object({
      source: z.enum(AUDIT_SOURCES).meta({
        description:
          "What made the change: a request with an API key, a person's unsubscribe link, an SES report, the reputation guard, or the configuration set switched on outside the API",
      }),
      api_key_id: z.string().optional().meta({ description: 'The key of the request (source api)' }),
    }),
    reason: z.string().optional().meta({ description: "Why, in the actor's words" }),
    details: z.record(z.string(), z.unknown()).optional().meta({
      description:
        "What the change replaced or counted: a suppression's previous record, the fields an update changed, an import's counts",
    }),
  })
  .meta({ id: 'AuditRecord' });

export const auditPage = z
  .object({ records: z.array(auditRecord), next_cursor: cursor })
  .meta({ id: 'AuditPage' });

export const requestUnderWay = errorBody
  .extend({
    code: z.literal('CONFLICT'),
    request_id: z.uuid().meta({ description: 'The request under way for the address' }),
    kind: z.enum(PERSON_REQUEST_KINDS).meta({
      description:
        'Its kind: a request of the same kind, or an erasure (an export waits while the address is being erased)',
    }),
  })
  .meta({ id: 'PersonRequestUnderWay' });

export const personRequestAccepted = z
  .object({
    request_id: z.uuid(),
    status: z.enum(PERSON_REQUEST_STATUSES),
    message: z.string(),
  })
  .meta({ id: 'PersonRequestAccepted' });

export const emailOnRecord = z
  .object({
    job_id: z.uuid(),
    role: z.enum(['recipient', 'cc']).meta({
      description: '`recipient`: the email was to the address; `cc`: the address had a copy of it',
    }),
    subject: z.string().nullable().meta({ description: "The job's subject; null past the job's retention" }),
    status: z.string().meta({
      description:
        "The delivery's outcome, `processing` while it has none; a cc copy: sent, failed, or not_sent (the email itself was suppressed, cancelled or failed)",
    }),
    sent_at: timestamp.nullable(),
    message_id: z.string().nullable().meta({ description: "SES's message id (a cc copy: its own)" }),
    feedback: z.array(z.object({ type: z.enum(FEEDBACK_KINDS), at: timestamp, detail: z.string() })),
  })
  .meta({ id: 'EmailOnRecord' });

export const personRequest = z
  .object({
    request_id: z.uuid(),
    kind: z.enum(PERSON_REQUEST_KINDS),
    email: z
      .string()
      .optional()
      .meta({ description: 'The address; an erasure no longer holds it once completed' }),
    address_key: z.string().optional().meta({
      description: "An erasure's: what stands for the address wherever it was (`erased:` and a keyed hash)",
    }),
    status: z.enum(PERSON_REQUEST_STATUSES),
    requested_at: timestamp,
    completed_at: timestamp.optional(),
    waiting_for: z.array(z.uuid()).optional().meta({
      description:
        "An erasure's: the jobs it waits out before it walks the tables (those running when it started; later, scheduled ones that started during a walk)",
    }),
    walks: count.optional().meta({
      description:
        "An erasure's: walks of the tables begun (more than one when a scheduled job started during a walk; `progress` counts the last)",
    }),
    erased: z.record(z.string(), count).optional().meta({
      description: "An erasure's: items it rewrote or removed, by table (none for an address not held)",
    }),
    progress: z
      .object({ segments_done: count, segments_total: count })
      .meta({ description: 'Segments of the ledger walked, of how many (0 of 0 until the walk starts)' }),
    result: z
      .object({
        nonprofit: nonprofit.nullable().meta({ description: 'The registry entry when the export started' }),
        suppression: suppression
          .nullable()
          .meta({ description: 'The suppression record when the export started' }),
        emails: z
          .array(emailOnRecord)
          .meta({ description: 'Every email on record to the address or cc to it: a page' }),
        next_cursor: cursor,
      })
      .optional()
      .meta({ description: "An export's result, once it is completed" }),
  })
  .meta({ id: 'PersonRequest' });

export const jobAccepted = z
  .object({
    job_id: z.uuid(),
    status: z.enum(JOB_STATUSES),
    total_emails: count,
    send_at: timestamp.optional().meta({ description: 'When a scheduled job starts (UTC)' }),
    message: z.string(),
  })
  .meta({ id: 'JobAccepted' });

export const job = z
  .object({
    job_id: z.uuid(),
    status: z.enum(JOB_STATUSES),
    total_emails: count,
    sent: count,
    failed: count,
    suppressed: count,
    bounced: count,
    transient_bounces: count,
    complained: count,
    unsubscribed: count.meta({ description: "Readers who used an email's unsubscribe link, each once" }),
    cancelled: count,
    created_at: timestamp,
    send_at: timestamp.nullable().meta({ description: "A scheduled job's time (UTC); null: sent at once" }),
    started_at: timestamp.nullable(),
    completed_at: timestamp.nullable(),
    cancel_requested_at: timestamp.nullable(),
    retried: count,
    retried_at: timestamp.nullable(),
    error: z.string().optional(),
    subject: z.string().nullable().optional().meta({ description: 'GET /jobs/{job_id} only.' }),
    cc: z.array(z.string()).optional().meta({ description: 'GET /jobs/{job_id} only.' }),
    template: z.string().optional().meta({ description: 'GET /jobs/{job_id} only.' }),
    html: z
      .string()
      .nullable()
      .optional()
      .meta({ description: 'GET /jobs/{job_id} only: the HTML template, null for a text-only job.' }),
  })
  .meta({ id: 'Job' });

export const jobPage = z.object({ jobs: z.array(job), next_cursor: cursor }).meta({ id: 'JobPage' });

export const jobCancelled = job.extend({ message: z.string() }).meta({ id: 'JobCancel' });

export const jobRetried = job
  .extend({
    retrying: count.nullable().meta({ description: 'null on a replay under the same Idempotency-Key.' }),
    not_retried: z
      .object({ nonprofit_deleted: count, too_large: count, suppressed: count, unknown: count })
      .nullable(),
    message: z.string(),
  })
  .meta({ id: 'JobRetry' });

const FOOTER_LINK = `The footer's unsubscribe link is shown as ${STORED_LINK}: each reader's message carries its own.`;
const textPart = z
  .string()
  .nullable()
  .meta({ description: `The text part, footer included. ${FOOTER_LINK}` });
const htmlPart = z
  .string()
  .nullable()
  .meta({
    description: `The HTML part as a string (never rendered by this API), footer included; null for a text-only email. ${FOOTER_LINK}`,
  });

export const jobEmail = z
  .object({
    to: z.string(),
    cc: z.array(z.string()),
    subject: z.string().nullable(),
    body: textPart,
    html: htmlPart,
    status: z.enum(EMAIL_STATUSES),
    message_id: z.string().nullable(),
    attempts: count,
    error: z.string().nullable(),
    sent_at: timestamp.nullable(),
    feedback: z.array(
      z.object({
        type: z.enum(FEEDBACK_KINDS),
        at: z.string(),
        detail: z.string(),
      }),
    ),
    copies: z
      .array(z.object({ to: z.string(), message_id: z.string().nullable(), error: z.string().nullable() }))
      .meta({
        description:
          'Each cc address gets its own message (its own unsubscribe link): its SES message id, or why SES refused it. Empty until the email has its outcome.',
      }),
  })
  .meta({ id: 'JobEmail' });

export const jobEmailsPage = z
  .object({ job_id: z.uuid(), emails: z.array(jobEmail), next_cursor: cursor })
  .meta({ id: 'JobEmailPage' });

export const jobPreview = z
  .object({
    total_emails: count,
    worst_case_bytes: count,
    max_rendered_email_bytes: count,
    previews: z.array(
      z.object({
        to: z.string(),
        cc: z.array(z.string()),
        subject: z.string().nullable(),
        body: textPart,
        html: htmlPart,
        error: z.string().optional(),
      }),
    ),
  })
  .meta({ id: 'JobPreview' });

export const usage = z
  .object({
    day: z.iso.date(),
    resets_at: timestamp,
    recipients: z.object({ used: count, limit: count, remaining: count }),
    requests: z.object({ rate_limit_per_second: z.number(), burst_limit: count, quota_per_day: count }),
  })
  .meta({ id: 'Usage' });

const windowCounts = {
  sent: count,
  bounced: count,
  complained: count,
  bounce_rate: z.number().min(0),
  complaint_rate: z.number().min(0),
  over: z.string().optional(),
};

export const sending = z
  .object({
    sending: z.enum(['enabled', 'paused']),
    reason: z.string().nullable(),
    guard: z
      .object({
        paused: z.boolean(),
        paused_at: timestamp.optional(),
        switched: z.boolean().optional(),
        reason: z.string().optional(),
        window: z.object(windowCounts).optional(),
        resumed_at: timestamp.optional(),
        resumed_by: z.string().optional(),
        resume_reason: z.string().optional(),
        baseline: z.object({ hour: z.string(), sent: count, bounced: count, complained: count }).optional(),
      })
      .nullable(),
    window: z.object({ ...windowCounts, since: timestamp, hours: count }),
    thresholds: z.object({
      window_hours: count,
      min_volume: count,
      pause_bounce_rate: z.number(),
      pause_complaint_rate: z.number(),
    }),
  })
  .meta({ id: 'Sending' });

/** A resume refused while the window is still over a threshold: how it stands. */
export const sendingStillOver = errorBody
  .extend({ code: z.literal('CONFLICT'), window: z.object(windowCounts) })
  .meta({ id: 'SendingStillOver' });

/** Why a check could not be made, never the error's own text (that is in the logs). */
const problemCode = z
  .enum(['timeout', 'access_denied', 'not_found', 'throttled', 'unavailable', 'unsupported', 'failed'])
  .meta({
    description:
      "Why the check could not be made: no answer in time, a permission missing, the resource gone, throttled, the service failing or unreachable, no such service (locally), or anything else. The error itself is in the function's logs.",
  });

const check = <S extends z.ZodRawShape>(statuses: readonly [string, ...string[]], shape: S) =>
  z.object({ status: z.enum(statuses), code: problemCode.optional(), ...shape });

/** `GET /health`, which answers anyone: the verdict and when it was reached. */
export const healthVerdict = z
  .object({ status: z.enum(['healthy', 'degraded', 'unhealthy']), checked_at: timestamp })
  .meta({ id: 'HealthVerdict' });

/** `GET /health/details`: every check. */
export const health = z
  .object({
    status: z.enum(['healthy', 'degraded', 'unhealthy']),
    checks: z.object({
      dynamodb: check(['ok', 'error'], { latency_ms: z.number() }),
      queue: check(['ok', 'error'], {
        latency_ms: z.number(),
        depth: count.optional(),
        in_flight: count.optional(),
      }),
      dead_letter_queue: check(['ok', 'warn', 'error'], { depth: count.optional() }),
      alarms: check(['ok', 'warn', 'unknown'], { firing: z.array(z.string()).optional() }),
      sending: check(['ok', 'paused', 'unknown'], { reason: z.string().optional() }).optional(),
      identity: check(['ok', 'pending', 'warn', 'failed', 'unknown'], {
        name: z.string().optional(),
        verification: z.string().optional(),
        dkim: z.string().optional(),
        mail_from: z.string().optional(),
      })
        .optional()
        .meta({ description: 'The sending domain, when the stack set up its SES identity (senderDomain).' }),
    }),
    version: z.string(),
    checked_at: timestamp,
  })
  .meta({ id: 'HealthDetails' });

/** What clients see of a job: its progress (and its content where given), never its owner's key or bookkeeping. */
export function jobView(record: JobRecord, content?: JobContent): z.output<typeof job> {
  return {
    job_id: record.job_id,
    status: record.status,
    total_emails: record.total_emails,
    sent: record.sent,
    failed: record.failed,
    suppressed: record.suppressed ?? 0,
    bounced: record.bounced ?? 0,
    transient_bounces: record.transient_bounces ?? 0,
    complained: record.complained ?? 0,
    unsubscribed: record.unsubscribed ?? 0,
    cancelled: record.cancelled ?? 0,
    created_at: record.created_at,
    send_at: record.send_at ?? null,
    started_at: record.started_at ?? null,
    completed_at: record.completed_at ?? null,
    cancel_requested_at: record.cancel_requested_at ?? null,
    retried: record.retried ?? 0,
    retried_at: record.retried_at ?? null,
    ...(record.error ? { error: record.error } : {}),
    ...(content
      ? { subject: content.subject, cc: content.cc, template: content.template, html: content.html ?? null }
      : {}),
  };
}

/** A person request as `GET /people/requests/{id}` answers it: an export's result once it is complete. */
export function personRequestView(
  request: PersonRequest,
  emails?: Page<EmailOnRecord>,
): z.input<typeof personRequest> {
  return {
    request_id: request.request_id,
    kind: request.kind,
    ...(request.email !== undefined ? { email: request.email } : {}),
    ...(request.address_key !== undefined ? { address_key: request.address_key } : {}),
    status: request.status,
    requested_at: request.requested_at,
    ...(request.completed_at ? { completed_at: request.completed_at } : {}),
    ...(request.kind === 'erasure'
      ? { waiting_for: request.waiting_for ?? [], walks: request.walks ?? 0, erased: request.erased ?? {} }
      : {}),
    progress: { segments_done: request.segments_done, segments_total: request.segments_total },
    ...(emails
      ? {
          result: {
            nonprofit: request.nonprofit ?? null,
            suppression: request.suppression ?? null,
            emails: emails.items,
            next_cursor: emails.nextCursor,
          },
        }
      : {}),
  };
}
