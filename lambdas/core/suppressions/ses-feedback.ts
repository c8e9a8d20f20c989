import type { SesFeedbackKind } from '../jobs/feedback-kinds';
import { jobId as jobIdSchema } from '../jobs/job';
import { storedEmailAddress } from '../nonprofits/nonprofit';
import * as z from '../zod';

/**
 * What Amazon SES tells of an email after it took it, as the configuration set's event destination
 * publishes it to SNS (and SNS, with raw message delivery, puts it on the feedback queue): bounces
 * and complaints. Only the fields this system acts on are read; SES adds fields over time, so the
 * rest is allowed and ignored.
 * https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html
 */

/** SES reports on one message, which has at most 50 recipients. */
const MAX_REPORTED_RECIPIENTS = 50;
/** SES's ids are short; a longer one is not SES's, and it would be stored on the delivery. */
const sesId = z.string().min(1).max(256);

/** A recipient SES names in a bounce or complaint. */
const reportedRecipient = z.looseObject({
  emailAddress: z.string().min(1).max(1_000),
  status: z.string().optional(),
  diagnosticCode: z.string().optional(),
});

const mail = z.looseObject({
  messageId: sesId,
  timestamp: z.string().optional(),
  /** Event publishing sends the email's tags: `job_id` is set on every email this system sends. */
  tags: z.record(z.string(), z.array(z.string())).optional(),
});

const bounce = z.looseObject({
  /** `Permanent` (the address will never take mail), `Transient` (try later) or `Undetermined`. */
  bounceType: z.string(),
  bounceSubType: z.string().optional(),
  bouncedRecipients: z.array(reportedRecipient).min(1).max(MAX_REPORTED_RECIPIENTS),
  feedbackId: sesId,
  timestamp: z.string().optional(),
});

const complaint = z.looseObject({
  complainedRecipients: z.array(reportedRecipient).min(1).max(MAX_REPORTED_RECIPIENTS),
  feedbackId: sesId,
  timestamp: z.string().optional(),
  /** The ARF feedback type, when the mailbox provider sent one: `abuse`, `not-spam`, … */
  complaintFeedbackType: z.string().optional(),
});

const bounceEvent = z.looseObject({ bounce, mail });
const complaintEvent = z.looseObject({ complaint, mail });

/** An SNS notification as SQS receives it without raw message delivery: the SES event is its `Message`. */
const snsEnvelope = z.looseObject({ Type: z.literal('Notification'), Message: z.string() });

/** One SES report about one email, as this system acts on it. */
export interface Feedback {
  /**
   * - `bounce`: the address will never take mail (a permanent bounce): suppress it.
   * - `transient_bounce`: a full mailbox, a message refused for now, or SES could not tell: counted only.
   * - `complaint`: the recipient marked the email as spam: suppress it.
   * - `not_spam`: a complaint of the ARF type `not-spam` (the recipient took a spam mark back): noted only.
   */
  kind: SesFeedbackKind;
  /** SES's id of this report; the same report delivered twice carries the same id. */
  feedbackId: string;
  /** SES's id of the email the report is about (the message id the consumer wrote on the claim). */
  messageId: string;
  /** The job the email belongs to, from its `job_id` tag; absent on mail another sender sent through the same configuration set. */
  jobId: string | undefined;
  /** The reported addresses, lower-cased as the registry and the suppression list key them; those that are no address are left out. */
  recipients: string[];
  /** What the report says, for the suppression's note and the delivery record: type, sub-type, diagnostic. */
  detail: string;
  /** When the report was made (SES's timestamp, if it is an ISO date), or when it was read. */
  at: string;
}

export class MalformedFeedbackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedFeedbackError';
  }
}

/** The longest detail kept: it goes in a suppression's note (500 characters at most) and a delivery record. */
const MAX_DETAIL_LENGTH = 500;

/**
 * Reads one feedback queue message: the SES event document itself (raw message delivery) or the
 * SNS notification around it. Returns `undefined` for an SES event of another type (a configuration
 * set may publish more than this system asks for); throws `MalformedFeedbackError` for anything that
 * is not an SES event at all, which the caller leaves to the dead-letter queue for an operator.
 */
export function parseFeedback(body: string, now: () => Date = () => new Date()): Feedback | undefined {
  const document = parseJson(body);
  const envelope = snsEnvelope.safeParse(document);
  const event = envelope.success ? parseJson(envelope.data.Message) : document;
  const type = typeOf(event);
  if (type === undefined)
    throw new MalformedFeedbackError('Not an SES event: no eventType or notificationType');
  if (type !== 'Bounce' && type !== 'Complaint') return undefined;
  return type === 'Bounce'
    ? fromBounce(read(bounceEvent, event, type), now)
    : fromComplaint(read(complaintEvent, event, type), now);
}

function fromBounce({ bounce: report, mail }: z.output<typeof bounceEvent>, now: () => Date): Feedback {
  const first = report.bouncedRecipients[0];
  return {
    kind: report.bounceType === 'Permanent' ? 'bounce' : 'transient_bounce',
    feedbackId: report.feedbackId,
    ...about(mail),
    recipients: addresses(report.bouncedRecipients),
    detail: clip(
      [`${report.bounceType}/${report.bounceSubType ?? 'General'}`, first?.diagnosticCode ?? first?.status]
        .filter(Boolean)
        .join(': '),
    ),
    at: isoOr(report.timestamp, now),
  };
}

function fromComplaint(
  { complaint: report, mail }: z.output<typeof complaintEvent>,
  now: () => Date,
): Feedback {
  const type = report.complaintFeedbackType?.toLowerCase();
  return {
    kind: type === 'not-spam' ? 'not_spam' : 'complaint',
    feedbackId: report.feedbackId,
    ...about(mail),
    recipients: addresses(report.complainedRecipients),
    detail: clip(`Complaint${report.complaintFeedbackType ? `/${report.complaintFeedbackType}` : ''}`),
    at: isoOr(report.timestamp, now),
  };
}

/** The email a report is about: SES's message id, and the job from the email's `job_id` tag. */
function about(fields: z.output<typeof mail>): Pick<Feedback, 'messageId' | 'jobId'> {
  const tagged = fields.tags?.job_id?.[0];
  return {
    messageId: fields.messageId,
    jobId: tagged !== undefined && jobIdSchema.safeParse(tagged).success ? tagged : undefined,
  };
}

function read<T extends z.ZodType>(schema: T, event: unknown, type: string): z.output<T> {
  const parsed = schema.safeParse(event);
  if (!parsed.success) {
    throw new MalformedFeedbackError(`An SES ${type} event without ${describePath(parsed.error)}`);
  }
  return parsed.data;
}

/** Whether a report means the address must get no more email: a permanent bounce or a complaint. */
export function suppresses(feedback: Feedback): boolean {
  return feedback.kind === 'bounce' || feedback.kind === 'complaint';
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new MalformedFeedbackError('Not JSON');
  }
}

/**
 * Event publishing names the type `eventType`; an identity's own feedback notifications (SES's
 * older mechanism, which a user may also point at this topic) name it `notificationType`.
 */
function typeOf(event: unknown): string | undefined {
  if (typeof event !== 'object' || event === null) return undefined;
  const { eventType, notificationType } = event as Record<string, unknown>;
  const type = eventType ?? notificationType;
  return typeof type === 'string' ? type : undefined;
}

/**
 * The reported addresses, as the suppression list keys them. SES may write `Name <address>`; an
 * entry that is no email address (which no one could read or lift from the list) is left out.
 */
function addresses(recipients: readonly { emailAddress: string }[]): string[] {
  const valid = recipients.flatMap(({ emailAddress: written }) => {
    const parsed = storedEmailAddress.safeParse(/<([^>]+)>/.exec(written)?.[1] ?? written);
    return parsed.success ? [parsed.data] : [];
  });
  return [...new Set(valid)];
}

/** SES's timestamp when it is one; the time of reading otherwise (it is stored and shown). */
function isoOr(timestamp: string | undefined, now: () => Date): string {
  return timestamp !== undefined && z.iso.datetime().safeParse(timestamp).success
    ? timestamp
    : now().toISOString();
}

function clip(text: string): string {
  return text.length <= MAX_DETAIL_LENGTH ? text : `${text.slice(0, MAX_DETAIL_LENGTH - 1)}…`;
}

function describePath(error: z.ZodError): string {
  const [issue] = error.issues;
  return issue && issue.path.length > 0 ? `a valid ${issue.path.join('.')}` : 'the fields it needs';
}
