import type { EmailQueue } from '../queue/email-queue';
import type { DeliveryReader } from './deliveries';
import type { JobStore } from './job-store';

export interface SweepDependencies {
  jobs: Pick<JobStore, 'activeJobs' | 'allRecipients' | 'touch'>;
  deliveries: Pick<DeliveryReader, 'processedRecipients'>;
  queue: EmailQueue;
  /** A running job that made no progress for this long has lost messages (or never had them). */
  staleAfterMs: number;
  now?: () => Date;
}

export interface SweepResult {
  jobsChecked: number;
  jobsSwept: number;
  reenqueued: number;
}

/**
 * Finds running jobs without progress for `staleAfterMs` and enqueues again every recipient that
 * has no outcome yet: a crash between recording a job and enqueueing it, or messages lost by a
 * queue, still end in sent or failed. A recipient enqueued twice is harmless: the second outcome
 * is a duplicate and changes nothing.
 */
export async function sweepStaleJobs(deps: SweepDependencies): Promise<SweepResult> {
  const now = deps.now?.() ?? new Date();
  const result: SweepResult = { jobsChecked: 0, jobsSwept: 0, reenqueued: 0 };
  for (const job of await deps.jobs.activeJobs()) {
    result.jobsChecked++;
    if (now.getTime() - Date.parse(job.updated_at) < deps.staleAfterMs) continue;
    const [recipients, processed] = await Promise.all([
      deps.jobs.allRecipients(job.job_id),
      deps.deliveries.processedRecipients(job.job_id),
    ]);
    const unsent = recipients.filter((recipient) => !processed.has(recipient));
    if (unsent.length > 0) {
      await deps.queue.enqueue(unsent.map((recipient) => ({ job_id: job.job_id, recipient })));
      result.reenqueued += unsent.length;
    }
    await deps.jobs.touch(job.job_id, now);
    result.jobsSwept++;
  }
  return result;
}
