import { ConflictError } from '../errors';
import type { RecipientQuota } from '../quota/recipient-quota';
import type { JobRecord } from './job';
import { findOwnedJob, type JobContentStore, type JobStore } from './job-store';

export interface CancelJobDependencies {
  jobs: Pick<JobStore, 'get' | 'requestCancel' | 'cancelScheduled'>;
  /** A scheduled job's content: what its acceptance counted against the key's quota, and on which day. */
  contents: Pick<JobContentStore, 'content'>;
  /** Each API key's recipients per UTC day; absent, nothing is given back. */
  quota?: Pick<RecipientQuota, 'refund'> | undefined;
  /** Told when a cancelled scheduled job's recipients could not be given back: the key keeps them counted that day. */
  onRefundFailure?: (jobId: string, error: unknown) => void;
  now?: () => Date;
}

const cancelledAlready = (job: JobRecord) => job.status === 'cancelling' || job.status === 'cancelled';

/**
 * POST /jobs/{job_id}/cancel: a scheduled job ends `cancelled` at once, nothing sent, and what its
 * acceptance counted goes back to the key's quota of that day. On a running job it records the
 * cancel. No email of it starts more than
 * a second later (a consumer looks before each send, on a look at most `CANCEL_LOOK_MAX_AGE_MS`
 * old); each recipient left is recorded `cancelled` as its message is received, and the counter
 * that counts the last one ends the job `cancelled`.
 * Cancelling again answers the job as it is; a job that ended otherwise is a 409 naming its status.
 */
export async function cancelJob(
  deps: CancelJobDependencies,
  { jobId, apiKeyId }: { jobId: string; apiKeyId: string },
): Promise<JobRecord> {
  let job = await findOwnedJob(deps.jobs, jobId, apiKeyId);
  // A job can change between the read and the write: it ends, another cancel gets in, or a retry
  // starts it again. Each look that finds it running tries once more; a few are plenty.
  for (let attempt = 1; ; attempt++) {
    if (cancelledAlready(job)) return job;
    if (job.status === 'scheduled') {
      if (attempt > MAX_CANCEL_ATTEMPTS)
        throw new ConflictError(`Job ${jobId} changed while it was being cancelled: send the cancel again.`);
      // Nothing was enqueued: the cancel ends it. Lost to its starter: it runs now, cancel that.
      if (await deps.jobs.cancelScheduled(job, deps.now?.() ?? new Date())) await refundScheduled(deps, job);
      job = await findOwnedJob(deps.jobs, jobId, apiKeyId);
      continue;
    }
    if (job.active === undefined)
      throw new ConflictError(`Job ${jobId} is ${job.status}: it has ended, so there is nothing to cancel.`);
    if (attempt > MAX_CANCEL_ATTEMPTS)
      throw new ConflictError(`Job ${jobId} changed while it was being cancelled: send the cancel again.`);
    const recorded = await deps.jobs.requestCancel(jobId, deps.now?.() ?? new Date());
    job = await findOwnedJob(deps.jobs, jobId, apiKeyId);
    if (recorded) return job;
  }
}

const MAX_CANCEL_ATTEMPTS = 3;

/** Gives back to the key's quota, on the day it was counted, every email a cancelled scheduled job would have sent. */
async function refundScheduled(deps: CancelJobDependencies, job: JobRecord): Promise<void> {
  if (!deps.quota) return;
  try {
    const content = await deps.contents.content(job.job_id);
    if (!content?.quota) return;
    // As counted at acceptance (jobVolume): each recipient's email and its cc copies.
    const volume = job.total_emails * (1 + content.cc.length);
    await deps.quota.refund(content.quota.api_key_id, content.quota.day, volume);
  } catch (error) {
    // Best effort, as every refund: the count stays (the safe side) and the cancel stands.
    deps.onRefundFailure?.(job.job_id, error);
  }
}
