import { createHash, randomUUID } from 'node:crypto';
import { AppError, ConflictError, NotFoundError } from '../errors';
import type { Nonprofit } from '../nonprofits/nonprofit';
import type { NonprofitRepository } from '../nonprofits/repository';
import { chunkMessages, type EmailQueue } from '../queue/email-queue';
import type { RecipientQuota } from '../quota/recipient-quota';
import type { SuppressionList } from '../suppressions/repository';
import { deliveryShards } from './deliveries';
import { checkSendAt, type JobContent, type JobRecord, jobVolume, type SendEmailRequest } from './job';
import { acceptedJob, scheduledJob } from './job-status';
import type { JobContentStore, JobStore } from './job-store';

export interface AcceptJobDependencies {
  jobs: Pick<JobStore, 'get' | 'create'>;
  contents: Pick<JobContentStore, 'put'>;
  nonprofits: Pick<NonprofitRepository, 'getMany'>;
  queue: Pick<EmailQueue, 'enqueue'>;
  /** Each API key's recipients per UTC day; absent, nothing is counted. */
  quota?: Pick<RecipientQuota, 'charge' | 'refund'> | undefined;
  now?: () => Date;
  /** Told when enqueueing fails after the job was recorded; the sweeper will enqueue it later. */
  onEnqueueFailure?: (job: JobRecord, error: unknown) => void;
  /** Told when recipients could not be given back to the quota: the key keeps them counted today. */
  onRefundFailure?: (apiKeyId: string, recipients: number, error: unknown) => void;
  /**
   * Tells which cc addresses were erased: a cc is not a registered nonprofit, so it is the one door
   * a job opens to an erased address, and the job keeps the address's key in its place (see
   * `ccAsStored`).
   */
  erased?: Pick<SuppressionList, 'erasedAmong'> | undefined;
}

export interface AcceptJobInput {
  apiKeyId: string;
  request: SendEmailRequest;
  idempotencyKey?: string | undefined;
  /**
   * When the caller's own time runs out (the function's deadline): its enqueue ends by then, one way
   * or another, which is what the sweeper needs to know before it may enqueue the job again.
   */
  enqueueDeadline: Date;
}

export interface AcceptedJob {
  job: JobRecord;
  /** True when an earlier request with the same Idempotency-Key made this job. */
  replayed: boolean;
}

/**
 * A digest of what the job will do: recipients as a set, and the exact template, subject, cc, HTML
 * and time. A request without HTML or `send_at` hashes as it did before they existed, so its replay
 * still matches.
 */
function requestHash({ emails, template, subject, cc, html, send_at }: SendEmailRequest): string {
  const canonical = JSON.stringify([
    [...emails].sort(),
    template,
    subject ?? null,
    cc ?? [],
    ...(html === undefined ? [] : [html]),
    // The instant, however it was written (an object: never taken for the HTML).
    ...(send_at === undefined ? [] : [{ send_at: new Date(send_at).toISOString() }]),
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

/** The same API key and Idempotency-Key always name the same job id, so a replay finds its job. */
function idempotentJobId(apiKeyId: string, idempotencyKey: string): string {
  const hex = createHash('sha256').update(`${apiKeyId}\n${idempotencyKey}`).digest('hex');
  // Shaped as a version 8 (custom) UUID, so every job id has one format.
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${((Number.parseInt(hex.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${hex.slice(18, 20)}-${hex.slice(20, 32)}`;
}

function replayOrConflict(existing: JobRecord, hash: string, apiKeyId: string): AcceptedJob {
  if (existing.api_key_id !== apiKeyId || existing.request_hash !== hash) {
    throw new ConflictError('The Idempotency-Key was used for a different request.');
  }
  return { job: existing, replayed: true };
}

/**
 * Every recipient's nonprofit, or a 404 naming each address that is not registered (the message
 * names the first ten; `details` all of them, by their index in the request). Read eventually
 * consistent (half the cost), then strongly consistent for any not found: a nonprofit registered a
 * moment ago is found. One deleted a moment ago may still be read, and is then mailed with the
 * values read, as one deleted after the acceptance would be.
 */
export async function requireRegistered(
  nonprofits: Pick<NonprofitRepository, 'getMany'>,
  emails: readonly string[],
): Promise<Map<string, Nonprofit>> {
  const registered = await nonprofits.getMany(emails, { consistent: false });
  const unseen = emails.filter((email) => !registered.has(email));
  if (unseen.length > 0)
    for (const [email, found] of await nonprofits.getMany(unseen)) registered.set(email, found);
  const unknown = emails
    .map((email, index) => ({ email, index }))
    .filter(({ email }) => !registered.has(email));
  if (unknown.length > 0) {
    const [first] = unknown;
    throw new NotFoundError(
      unknown.length === 1 && first
        ? `Nonprofit with email ${first.email} not found.`
        : `${unknown.length} recipients are not registered nonprofits: ${unknown
            .slice(0, 10)
            .map(({ email }) => email)
            .join(', ')}${unknown.length > 10 ? ', …' : ''} (all are listed in details)`,
      unknown.map(({ email, index }) => ({
        field: `emails[${index}]`,
        message: `Nonprofit with email ${email} not found.`,
      })),
    );
  }
  return registered;
}

/**
 * POST /send-email: checks every recipient is a registered nonprofit, records the recipients and
 * the job (durably, before anything is answered), then enqueues its recipients ten to a message,
 * with the names and addresses the check read: a job mails the registry as it was when the job was
 * accepted. If enqueueing fails the job stays accepted: it is recorded, and the sweeper enqueues
 * what is unsent (without the values: the consumer reads them then).
 */
export async function acceptJob(deps: AcceptJobDependencies, input: AcceptJobInput): Promise<AcceptedJob> {
  const { apiKeyId, request, idempotencyKey, enqueueDeadline } = input;
  const hash = requestHash(request);
  const jobId = idempotencyKey ? idempotentJobId(apiKeyId, idempotencyKey) : randomUUID();
  if (idempotencyKey) {
    const existing = await deps.jobs.get(jobId);
    if (existing) return replayOrConflict(existing, hash, apiKeyId);
  }

  const now = deps.now?.() ?? new Date();
  // Checked against the clock before anything is read or counted: a bad time changes nothing.
  const sendAt = request.send_at === undefined ? undefined : checkSendAt(request.send_at, now);
  const registered = await requireRegistered(deps.nonprofits, request.emails);
  const cc = await ccAsStored(deps, request.cc);

  const recipients = [...request.emails].sort();
  const createdAt = now.toISOString();
  // Counted before anything is written, so a refusal stores nothing; given back if the job is refused after.
  const volume = jobVolume(request);
  const charged = deps.quota && (await deps.quota.charge(apiKeyId, volume, now));
  // Best effort: a refund that fails keeps the count (the safe side) and must not change the answer.
  const refund = async () => {
    if (!deps.quota || !charged) return;
    try {
      await deps.quota.refund(apiKeyId, charged.day, volume);
    } catch (error) {
      deps.onRefundFailure?.(apiKeyId, volume, error);
    }
  };
  let accepted: { job: JobRecord; created: boolean };
  try {
    accepted = await recordJob(deps, {
      jobId,
      apiKeyId,
      request: { ...request, cc },
      recipients,
      hash,
      createdAt,
      enqueueDeadline,
      idempotencyKey,
      quota: charged && { api_key_id: apiKeyId, day: charged.day },
      sendAt,
    });
  } catch (error) {
    // A refusal (the Idempotency-Key's other request) sends nothing. Any other failure (a throttle,
    // a timeout) may have created the job all the same: the count goes back only if it did not.
    if (error instanceof AppError || !(await madeTheJob(deps, jobId, createdAt))) await refund();
    throw error;
  }
  if (!accepted.created) {
    // Another request with the same Idempotency-Key made the job a moment before: it was counted then.
    await refund();
    return replayOrConflict(accepted.job, hash, apiKeyId);
  }
  // A scheduled job's recipients are enqueued at its time, by its starter (scheduled-jobs.ts).
  if (sendAt !== undefined) return { job: accepted.job, replayed: false };
  try {
    // The names and addresses just read travel with the recipients: the consumer renders from them
    // and reads the registry no more (a read unit per two emails).
    await deps.queue.enqueue(chunkMessages(jobId, recipients, { values: registered }));
  } catch (error) {
    deps.onEnqueueFailure?.(accepted.job, error);
  }
  return { job: accepted.job, replayed: false };
}

/**
 * The job's cc as it is stored: an erased address is kept by its key, never by itself, so the job
 * stores nothing an erasure took away, and its copy is suppressed under the key (the consumer reads
 * the cc's suppressions). Read strongly consistent: an erasure accepted a moment ago counts.
 */
async function ccAsStored(
  deps: Pick<AcceptJobDependencies, 'erased'>,
  cc: readonly string[] | undefined,
): Promise<string[] | undefined> {
  if (!cc || cc.length === 0 || !deps.erased) return cc && [...cc];
  const erased = await deps.erased.erasedAmong(cc, { consistent: true });
  return cc.map((address) => erased.get(address) ?? address);
}

/**
 * Whether this request's job item was written (a job under the same Idempotency-Key made by another
 * request was counted by that one); unknown, with the store failing still, counts as written.
 */
async function madeTheJob(
  deps: Pick<AcceptJobDependencies, 'jobs'>,
  jobId: string,
  createdAt: string,
): Promise<boolean> {
  try {
    return (await deps.jobs.get(jobId))?.created_at === createdAt;
  } catch {
    return true;
  }
}

/** Content and recipients first, then the job item: a job item that exists always has both. */
async function recordJob(
  deps: Pick<AcceptJobDependencies, 'contents' | 'jobs'>,
  job: {
    jobId: string;
    apiKeyId: string;
    request: SendEmailRequest;
    recipients: string[];
    hash: string;
    createdAt: string;
    enqueueDeadline: Date;
    idempotencyKey: string | undefined;
    quota: JobContent['quota'];
    /** When the job starts, if it is scheduled (normalized to UTC). */
    sendAt: string | undefined;
  },
) {
  const { jobId, apiKeyId, request, recipients, hash, createdAt, enqueueDeadline, idempotencyKey, sendAt } =
    job;
  await deps.contents.put({
    job_id: jobId,
    template: request.template,
    ...(request.html === undefined ? {} : { html: request.html }),
    subject: request.subject ?? null,
    cc: request.cc ?? [],
    accepted_at: createdAt,
    ...(sendAt === undefined ? {} : { starts_at: sendAt }),
    ...(job.quota ? { quota: job.quota } : {}),
    ...(deliveryShards(recipients.length) > 1 ? { delivery_shards: deliveryShards(recipients.length) } : {}),
    recipients,
    request_hash: hash,
  });
  const fields = {
    job_id: jobId,
    api_key_id: apiKeyId,
    request_hash: hash,
    created_at: createdAt,
    ...(idempotencyKey ? { idempotency_key: idempotencyKey } : {}),
  };
  return deps.jobs.create(
    sendAt === undefined
      ? acceptedJob({ ...fields, enqueue_deadline: enqueueDeadline.toISOString() }, recipients.length)
      : scheduledJob(fields, recipients.length, sendAt),
  );
}
