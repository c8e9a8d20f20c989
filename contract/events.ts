import { z } from 'zod';
import {
  DETAIL_TYPES,
  type DetailOf,
  type DetailType,
  EVENT_SCHEMA_VERSION,
  EVENT_SOURCE,
} from '../lambdas/core/events/events';

/**
 * The published schemas of the events' `detail` (JSON Schema 2020-12), one file per detail-type
 * under `contract/events/`, written with the API's contract (`npm run openapi`). Each zod schema
 * here is held to the type the publisher builds (`DetailOf`): a field added on one side only does
 * not compile.
 */

const timestamp = z.iso.datetime({ offset: true }).describe('ISO 8601 time (UTC)');
const common = {
  version: z.literal(EVENT_SCHEMA_VERSION).describe('The version of this schema'),
  event_id: z
    .string()
    .min(1)
    .describe(
      'Names the fact: an event delivered twice (rare) has the same id, so a subscriber drops the second',
    ),
  occurred_at: timestamp.describe('When the fact happened'),
};
const jobId = z.uuid().describe('The job');
const apiKeyId = z.string().min(1).describe('The id of the API key that sent the job');
const email = z.email().describe('The address');
const count = z.number().int().min(0);

const jobEnded = z.strictObject({
  ...common,
  job_id: jobId,
  api_key_id: apiKeyId,
  status: z.enum(['completed', 'cancelled']),
  total_emails: count,
  sent: count,
  failed: count,
  suppressed: count,
  cancelled: count,
  created_at: timestamp,
  completed_at: timestamp,
});

const feedback = {
  ...common,
  job_id: jobId,
  email: email.describe('The recipient of the email SES reported on'),
  message_id: z.string().min(1).describe("SES's message id of the email"),
  feedback_id: z.string().min(1).describe("SES's id of the report: one event per report"),
  reported_at: timestamp,
  diagnostic: z.string().describe("SES's diagnostic, as it gave it"),
};

export const EVENT_DETAIL_SCHEMAS: { [T in DetailType]: z.ZodType<DetailOf[T]> } = {
  'Job Accepted': z.strictObject({
    ...common,
    job_id: jobId,
    api_key_id: apiKeyId,
    status: z.enum(['queued', 'scheduled']).describe('`queued`, or `scheduled` for a job with `send_at`'),
    total_emails: count,
    created_at: timestamp,
    send_at: timestamp.nullable().describe("When a scheduled job's emails start; null: at once"),
  }),
  'Job Completed': jobEnded,
  'Job Cancelled': jobEnded,
  'Email Bounced': z.strictObject({
    ...feedback,
    bounce_type: z
      .enum(['permanent', 'transient'])
      .describe('`permanent`: the address is suppressed; `transient`: a full mailbox, say'),
  }),
  'Email Complained': z.strictObject(feedback),
  'Recipient Unsubscribed': z.strictObject({
    ...common,
    email,
    job_id: jobId.nullable().describe('The job whose link was used'),
    api_key_id: apiKeyId.nullable().describe('The API key that sent that job'),
  }),
  'Sending Paused': z.strictObject({
    ...common,
    reason: z.string().min(1),
    window: z
      .strictObject({
        sent: count,
        bounced: count,
        complained: count,
        bounce_rate: z.number().min(0),
        complaint_rate: z.number().min(0),
      })
      .describe("The reputation window's counts and rates when it paused"),
  }),
  'Sending Resumed': z.strictObject({
    ...common,
    resumed_by: z
      .string()
      .min(1)
      .describe(
        'The API key id that resumed, or `outside the API` when the configuration set was found on again',
      ),
    reason: z.string().min(1),
  }),
};

/** `Job Completed` → `job-completed`: the schema's file name. */
export const eventFileName = (type: DetailType) =>
  `${type.toLowerCase().replaceAll(' ', '-')}.v${EVENT_SCHEMA_VERSION}.json`;

/** Each detail-type's JSON Schema, as the files hold it. */
export function eventSchemaDocuments(): Map<string, unknown> {
  return new Map(
    DETAIL_TYPES.map((type) => [
      eventFileName(type),
      {
        ...z.toJSONSchema(EVENT_DETAIL_SCHEMAS[type], { target: 'draft-2020-12', io: 'output' }),
        $id: `urn:nonprofit-mailer:events:${type.toLowerCase().replaceAll(' ', '-')}:v${EVENT_SCHEMA_VERSION}`,
        title: `${type} (source ${EVENT_SOURCE}): detail, version ${EVENT_SCHEMA_VERSION}`,
      },
    ]),
  );
}
