import type { FeedbackReport } from '../jobs/deliveries';
import type { JobRecord } from '../jobs/job';
import type { GuardRecord, ReputationVerdict } from '../sending/reputation';

/**
 * The facts this system tells the world, as EventBridge events (source `nonprofit-mailer`, one
 * `detail-type` each). Each `detail` carries `version` (its schema's: a field removed or changed in
 * meaning makes a new version; a field added does not), the `event_id` that names the fact (the same
 * on the rare second delivery, so a subscriber can drop it) and when it happened. Their JSON Schemas
 * are `contract/events/*.json`, written from `contract/events.ts`.
 *
 * An event is written to the outbox (a table with a stream) in the same DynamoDB transaction as the
 * write that decides its fact, so it exists exactly when the fact does, once; the publisher puts it
 * on the bus from the outbox's stream.
 */
export const EVENT_SOURCE = 'nonprofit-mailer';
export const EVENT_SCHEMA_VERSION = '1';

export const DETAIL_TYPES = [
  'Job Accepted',
  'Job Completed',
  'Job Cancelled',
  'Email Bounced',
  'Email Complained',
  'Recipient Unsubscribed',
  'Sending Paused',
  'Sending Resumed',
] as const;
export type DetailType = (typeof DETAIL_TYPES)[number];

interface Common {
  version: typeof EVENT_SCHEMA_VERSION;
  event_id: string;
  occurred_at: string;
}

export interface JobAcceptedDetail extends Common {
  job_id: string;
  api_key_id: string;
  status: 'queued' | 'scheduled';
  total_emails: number;
  created_at: string;
  /** When a scheduled job's recipients are enqueued; null for a job sent at once. */
  send_at: string | null;
}

/** `Job Completed` and `Job Cancelled`: the job's final counts. */
export interface JobEndedDetail extends Common {
  job_id: string;
  api_key_id: string;
  status: 'completed' | 'cancelled';
  total_emails: number;
  sent: number;
  failed: number;
  suppressed: number;
  cancelled: number;
  created_at: string;
  completed_at: string;
}

export interface EmailFeedbackDetail extends Common {
  job_id: string;
  /** The recipient the email went to. */
  email: string;
  message_id: string;
  /** SES's id of the report (its feedback id): one event per report. */
  feedback_id: string;
  /** Only on `Email Bounced`: `permanent` (the address is suppressed) or `transient` (a full mailbox, say). */
  bounce_type?: 'permanent' | 'transient';
  reported_at: string;
  /** SES's diagnostic, as it gave it. */
  diagnostic: string;
}

export interface RecipientUnsubscribedDetail extends Common {
  email: string;
  /** The job whose link was used, and the key that sent it; null when the address was suppressed another way. */
  job_id: string | null;
  api_key_id: string | null;
}

export interface SendingPausedDetail extends Common {
  reason: string;
  /** The window's counts and rates when it paused. */
  window: { sent: number; bounced: number; complained: number; bounce_rate: number; complaint_rate: number };
}

export interface SendingResumedDetail extends Common {
  /** The API key id that resumed, or `outside the API` when the configuration set was found on again. */
  resumed_by: string;
  reason: string;
}

export interface DetailOf {
  'Job Accepted': JobAcceptedDetail;
  'Job Completed': JobEndedDetail;
  'Job Cancelled': JobEndedDetail;
  'Email Bounced': EmailFeedbackDetail;
  'Email Complained': EmailFeedbackDetail;
  'Recipient Unsubscribed': RecipientUnsubscribedDetail;
  'Sending Paused': SendingPausedDetail;
  'Sending Resumed': SendingResumedDetail;
}

/** An event as the outbox keeps it until it is published. */
export interface OutboxEvent<T extends DetailType = DetailType> {
  event_id: string;
  detail_type: T;
  detail: DetailOf[T];
}

type Fields<T extends DetailType> = Omit<DetailOf[T], keyof Common>;

/**
 * An event of a fact. Its id is derived from the fact where the fact has a natural key (a job is
 * accepted once; an SES report has its own id), so even a writer that ran twice could not make two.
 */
export function mailerEvent<T extends DetailType>(
  type: T,
  id: string,
  occurredAt: string,
  fields: Fields<T>,
): OutboxEvent<T> {
  const eventId = `${type.toLowerCase().replaceAll(' ', '-')}:${id}`;
  return {
    event_id: eventId,
    detail_type: type,
    detail: {
      version: EVENT_SCHEMA_VERSION,
      event_id: eventId,
      occurred_at: occurredAt,
      ...fields,
    } as DetailOf[T],
  };
}

export const jobAccepted = (job: JobRecord) =>
  mailerEvent('Job Accepted', job.job_id, job.created_at, {
    job_id: job.job_id,
    api_key_id: job.api_key_id,
    status: job.status === 'scheduled' ? 'scheduled' : 'queued',
    total_emails: job.total_emails,
    created_at: job.created_at,
    send_at: job.send_at ?? null,
  });

/**
 * A job's end as the write that ends it knows it: the job, which end, when, and the counts it ends
 * with (the job's before that write, plus what the write adds: each ending write knows both).
 */
export interface JobEndedFact {
  job: Pick<JobRecord, 'job_id' | 'api_key_id' | 'total_emails' | 'created_at'>;
  status: 'completed' | 'cancelled';
  completed_at: string;
  counts: Pick<JobEndedDetail, 'sent' | 'failed' | 'suppressed' | 'cancelled'>;
}

export const jobEnded = ({ job, status, completed_at, counts }: JobEndedFact) =>
  // A retried job ends again, a new fact: its id names the end's time too.
  mailerEvent(
    status === 'completed' ? 'Job Completed' : 'Job Cancelled',
    `${job.job_id}:${completed_at}`,
    completed_at,
    {
      job_id: job.job_id,
      api_key_id: job.api_key_id,
      status,
      total_emails: job.total_emails,
      sent: counts.sent,
      failed: counts.failed,
      suppressed: counts.suppressed,
      cancelled: counts.cancelled,
      created_at: job.created_at,
      completed_at,
    },
  );

/** An SES report noted on one of a job's emails: a bounce of either kind, or a complaint. */
export function emailFeedback(
  jobId: string,
  recipient: string,
  report: FeedbackReport,
): OutboxEvent | undefined {
  // Told when the link suppressed the address (`Recipient Unsubscribed`), once however often it is used.
  if (report.kind === 'unsubscribe' || report.kind === 'not_spam') return undefined;
  const fields = {
    job_id: jobId,
    email: recipient,
    message_id: report.messageId,
    feedback_id: report.feedbackId,
    reported_at: report.at,
    diagnostic: report.detail,
  };
  // One report can name several recipients: each is a fact of its own.
  const id = `${report.feedbackId}:${recipient}`;
  if (report.kind === 'complaint') return mailerEvent('Email Complained', id, report.at, fields);
  return mailerEvent('Email Bounced', id, report.at, {
    ...fields,
    bounce_type: report.kind === 'bounce' ? 'permanent' : 'transient',
  });
}

export const recipientUnsubscribed = (suppression: {
  email: string;
  suppressed_at: string;
  job_id?: string | undefined;
  api_key_id?: string | undefined;
}) =>
  mailerEvent(
    'Recipient Unsubscribed',
    `${suppression.email}:${suppression.suppressed_at}`,
    suppression.suppressed_at,
    {
      email: suppression.email,
      job_id: suppression.job_id ?? null,
      api_key_id: suppression.api_key_id ?? null,
    },
  );

export const sendingPaused = (record: { paused_at: string; reason: string; window: ReputationVerdict }) =>
  mailerEvent('Sending Paused', record.paused_at, record.paused_at, {
    reason: record.reason,
    window: {
      sent: record.window.sent,
      bounced: record.window.bounced,
      complained: record.window.complained,
      bounce_rate: record.window.bounce_rate,
      complaint_rate: record.window.complaint_rate,
    },
  });

export const sendingResumed = (
  record: Required<Pick<GuardRecord, 'resumed_at' | 'resumed_by' | 'resume_reason'>>,
) =>
  mailerEvent('Sending Resumed', record.resumed_at, record.resumed_at, {
    resumed_by: record.resumed_by,
    reason: record.resume_reason,
  });
