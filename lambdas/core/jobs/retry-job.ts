import { randomUUID } from 'node:crypto';
import { ConflictError, GoneError } from '../errors';
import type { EmailQueue } from '../queue/email-queue';
import type { SuppressionList } from '../suppressions/repository';
import { type DeliveryReader, type FailureRequeue, RETRYABLE_FAILURES } from './deliveries';
import type { JobRecord } from './job';
import { findOwnedJob, type JobContentStore, type JobStore } from './job-store';

/**
 * Retries a job may have. Each keeps its Idempotency-Key on the job item (at most 255 bytes), so
 * the bound keeps the item far from DynamoDB's 400 KB; a recipient still failing after this many
 * tries needs a look, not another one.
 */
export const MAX_RETRIES_PER_JOB = 20;

export interface RetryJobDependencies {
  jobs: Pick<JobStore, 'get'>;
  /** A job's content: gone past its retention, and with it what a retry would send. */
  contents: Pick<JobContentStore, 'content'>;
  deliveries: Pick<DeliveryReader, 'failures'> & FailureRequeue;
  suppressions: Pick<SuppressionList, 'getMany'>;
  queue: Pick<EmailQueue, 'enqueue'>;
  /** Told when enqueueing fails after the failures were requeued; the sweeper will enqueue them. */
  onEnqueueFailure?: (job: JobRecord, error: unknown) => void;
}

export interface RetryJobInput {
  jobId: string;
  apiKeyId: string;
  idempotencyKey?: string | undefined;
  /** When the caller's own time runs out: its enqueue has ended by then, which the sweeper needs. */
  enqueueDeadline: Date;
}

/** Failures a retry leaves as they are, by why. */
export interface NotRetried {
  nonprofit_deleted: number;
  too_large: number;
  suppressed: number;
  /** Failures recorded before their reason was kept: never resent blind. */
  unknown: number;
}

export type RetriedJob =
  | { job: JobRecord; replayed: false; retrying: number; notRetried: NotRetried }
  | { job: JobRecord; replayed: true };

/**
 * POST /jobs/{job_id}/retry: enqueues again the recipients of a completed job whose failure a second
 * try may get past (dead-lettered, refused by the transport), unless their address has been
 * suppressed since. The ledger takes them back from `failed` to `queued` with the job's counters in
 * the same transactions, so each one's new outcome moves the counts exactly (`failed` to `sent`, or
 * back to `failed`). Nothing to retry, a job still running or cancelled, is a 409.
 */
export async function retryJob(deps: RetryJobDependencies, input: RetryJobInput): Promise<RetriedJob> {
  const { jobId, apiKeyId, idempotencyKey } = input;
  const job = await findOwnedJob(deps.jobs, jobId, apiKeyId);
  if (idempotencyKey !== undefined && job.retry_keys?.has(idempotencyKey)) return { job, replayed: true };
  refuseUnlessEnded(job);
  if (!(await deps.contents.content(jobId)))
    throw new GoneError(
      `Job ${jobId} can no longer be retried: its content and recipient list were removed ledgerRetentionDays after it started.`,
    );
  if ((job.retries ?? 0) >= MAX_RETRIES_PER_JOB) {
    throw new ConflictError(
      `Job ${jobId} was retried ${MAX_RETRIES_PER_JOB} times already, the most a job may be: send its failures as a new job.`,
    );
  }

  const failures = await deps.deliveries.failures(jobId);
  const notRetried: NotRetried = { nonprofit_deleted: 0, too_large: 0, suppressed: 0, unknown: 0 };
  const candidates: string[] = [];
  for (const failure of failures) {
    const reason = failure.failure_reason;
    if (reason && RETRYABLE_FAILURES.has(reason)) candidates.push(failure.recipient);
    else if (reason === 'nonprofitDeleted') notRetried.nonprofit_deleted++;
    else if (reason === 'tooLarge') notRetried.too_large++;
    else notRetried.unknown++;
  }
  const suppressed = candidates.length > 0 ? await deps.suppressions.getMany(candidates) : new Map();
  notRetried.suppressed = suppressed.size;
  const recipients = candidates.filter((recipient) => !suppressed.has(recipient));
  if (recipients.length === 0) {
    throw new ConflictError(
      failures.length === 0
        ? `Job ${jobId} has no failures to retry.`
        : `Job ${jobId} has nothing to retry: none of its ${failures.length} failures may pass on a second try (${describe(notRetried)}).`,
    );
  }

  const written = await deps.deliveries.requeueFailures(jobId, {
    recipients,
    token: randomUUID(),
    idempotencyKey,
    deadline: input.enqueueDeadline,
  });
  if (written.state === 'replayed')
    return { job: await findOwnedJob(deps.jobs, jobId, apiKeyId), replayed: true };
  if (written.state === 'refused' || written.recipients.length === 0) {
    // Another retry (or a change) got in between the read and the write.
    refuseUnlessEnded(await findOwnedJob(deps.jobs, jobId, apiKeyId));
    throw new ConflictError(`Job ${jobId} changed while its failures were read: try again.`);
  }
  const current = await findOwnedJob(deps.jobs, jobId, apiKeyId);
  try {
    await deps.queue.enqueue(written.recipients.map((recipient) => ({ job_id: jobId, recipient })));
  } catch (error) {
    deps.onEnqueueFailure?.(current, error);
  }
  return { job: current, replayed: false, retrying: written.recipients.length, notRetried };
}

function refuseUnlessEnded(job: JobRecord): void {
  if (job.status === 'completed') return;
  const why =
    job.status === 'cancelled' || job.status === 'cancelling'
      ? 'a cancelled job is not retried'
      : 'its failures can be retried once it has completed';
  throw new ConflictError(`Job ${job.job_id} is ${job.status}: ${why}.`);
}

function describe(notRetried: NotRetried): string {
  const parts = [
    [notRetried.nonprofit_deleted, 'nonprofit deleted'],
    [notRetried.too_large, 'too large to send'],
    [notRetried.suppressed, 'address suppressed'],
    [notRetried.unknown, 'reason not recorded'],
  ] as const;
  return parts
    .filter(([count]) => count > 0)
    .map(([count, what]) => `${count} ${what}`)
    .join(', ');
}
