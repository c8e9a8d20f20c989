import { ConflictError } from '../errors';
import type { JobRecord } from './job';
import { findOwnedJob, type JobStore } from './job-store';

export interface CancelJobDependencies {
  jobs: Pick<JobStore, 'get' | 'requestCancel'>;
  now?: () => Date;
}

const cancelledAlready = (job: JobRecord) => job.status === 'cancelling' || job.status === 'cancelled';

/**
 * POST /jobs/{job_id}/cancel: records the cancel on a running job. No email of it starts more than
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
