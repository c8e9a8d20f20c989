/**
 * How functions find the resources they use: one environment variable per table and queue, named
 * here once. The stack's constructs bind a resource with these names (setting the variable and the
 * IAM grant in one call, `ProjectFunction.bindTable`/`bindQueue`), and the adapters read them with
 * `bound()`, which fails at cold start, naming the variable, when a function was not given one.
 * Index names are fixed, so they are constants both sides import rather than variables.
 */

export const TABLE = {
  nonprofits: 'NONPROFITS_TABLE',
  jobs: 'JOBS_TABLE',
  jobContents: 'JOB_CONTENTS_TABLE',
  deliveries: 'DELIVERIES_TABLE',
  renderedEmails: 'RENDERED_EMAILS_TABLE',
  suppressions: 'SUPPRESSIONS_TABLE',
  usage: 'USAGE_TABLE',
  /** Events waiting to be published, each written with its fact (see core/events). */
  outbox: 'OUTBOX_TABLE',
  /** Append-only records of changes to the registry, the suppression list and the sender (core/audit). */
  audit: 'AUDIT_TABLE',
  /** A person's requests about their data (exports) and what they found (core/people). */
  personRequests: 'PERSON_REQUESTS_TABLE',
} as const;
export type TableBinding = (typeof TABLE)[keyof typeof TABLE];

export const QUEUE = {
  emails: 'EMAIL_QUEUE_URL',
  deadLetters: 'DEAD_LETTER_QUEUE_URL',
  /** The steps of person requests (core/people). */
  personRequests: 'PERSON_REQUEST_QUEUE_URL',
} as const;
export type QueueBinding = (typeof QUEUE)[keyof typeof QUEUE];

export const INDEX = {
  /** Nonprofits by email domain: `GET /nonprofits?domain=`. */
  nonprofitsByDomain: 'by-domain',
  /** A client's jobs, newest first: `GET /jobs`. */
  jobsByApiKey: 'by-api-key',
  /** Sparse: only running jobs carry `active`; the sweeper reads this index alone. */
  activeJobs: 'active',
  /** Sparse: only jobs waiting for their `send_at` carry `scheduled`; sorted by `send_at`, read by their starter. */
  scheduledJobs: 'scheduled',
  /** Suppressed addresses by why: `GET /suppressions?reason=`. */
  suppressionsByReason: 'by-reason',
  /** Audit records about one address, newest first: `GET /audit?email=`. */
  auditByEmail: 'by-email',
  /** Audit records of one action, newest first: `GET /audit?action=`. */
  auditByAction: 'by-action',
} as const;

/**
 * The value of a bound resource's variable. Called while a handler module loads (cold start), so a
 * function the stack forgot to bind fails there, named, and never answers a request with a 500.
 */
export function bound(
  variable: TableBinding | QueueBinding,
  source: NodeJS.ProcessEnv = process.env,
): string {
  const value = source[variable];
  if (!value) {
    throw new Error(
      `Invalid environment: ${variable} is not set; bind the resource to this function in the stack`,
    );
  }
  return value;
}
