import { ConflictError } from '../errors';
import type { JobRecord } from './job';
import { findOwnedJob, type JobStore } from './job-store';

export interface CancelJobDependencies {
  jobs: Pick<JobStore, 'get' | 'requestCancel'>;
  now?: () => Date;
}

const cancelledAlready = (job: JobRecord) => job.status === 'cancelling' || job.status === 'cancelled';

/**
 * POST /jobs/{job_id}/cancel: records the cancel on a running job. No email of it starts afterwards
 * (a consumer reads the cancel right before each send); each recipient left is recorded `cancelled`
 * as its message is received, and the write that records the last one ends the job `cancelled`.
 * Cancelling again answers the job as it is; a job that ended otherwise is a 409 naming its status.
 */
export async function cancelJob(
  deps: CancelJobDependencies,
  { jobId, apiKeyId }: { jobId: string; apiKeyId: string },
): Promise<JobRecord> {
  const job = await findOwnedJob(deps.jobs, jobId, apiKeyId);
  if (cancelledAlready(job)) return job;
  if (job.active !== undefined && (await deps.jobs.requestCancel(jobId, deps.now?.() ?? new Date()))) {
    return findOwnedJob(deps.jobs, jobId, apiKeyId);
  }
  // The job ended, or another cancel got in, since it was read.
  const current = await findOwnedJob(deps.jobs, jobId, apiKeyId);
  if (cancelledAlready(current)) return current;
  throw new ConflictError(`Job ${jobId} is ${current.status}: it has ended, so there is nothing to cancel.`);
}
