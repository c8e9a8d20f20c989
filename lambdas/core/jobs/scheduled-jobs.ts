import { setTimeout as sleep } from 'node:timers/promises';
import { chunkMessages, type EmailQueue } from '../queue/email-queue';
import type { JobContentStore, JobStore } from './job-store';

/**
 * How far ahead each run looks. The starter runs every minute (an EventBridge rule's finest rate):
 * it starts what is due now and waits, within the run, for what falls due before the next one, so a
 * job starts within seconds of its `send_at`, not up to a minute after.
 */
export const START_AHEAD_MS = 60_000;

export interface StartScheduledDependencies {
  jobs: Pick<JobStore, 'scheduledBefore' | 'startScheduled'>;
  contents: Pick<JobContentStore, 'allRecipients'>;
  queue: Pick<EmailQueue, 'enqueue'>;
  /** The run's own deadline: a started job's enqueue has ended by then, which the sweeper needs. */
  deadline: Date;
  now?: () => Date;
  wait?: (ms: number) => Promise<void>;
}

export interface StartScheduledResult {
  /** Jobs started and enqueued by this run. */
  started: string[];
  /** Started, but enqueueing failed: the sweeper enqueues them once their enqueue deadline passed. */
  notEnqueued: { job_id: string; error: string }[];
}

/**
 * Starts the scheduled jobs due by the end of the coming minute, each at its time, earliest first:
 * the job becomes `queued` and running (a conditional update, so a cancel or an overlapping run that
 * got there first wins), then its recipients are enqueued ten to a message, as at acceptance. A
 * failed enqueue leaves a running job the sweeper recovers, as one that failed at acceptance.
 */
export async function startScheduledJobs(deps: StartScheduledDependencies): Promise<StartScheduledResult> {
  const now = () => (deps.now?.() ?? new Date()).getTime();
  const wait = deps.wait ?? ((ms: number) => sleep(ms));
  const due = await deps.jobs.scheduledBefore(new Date(now() + START_AHEAD_MS));
  const result: StartScheduledResult = { started: [], notEnqueued: [] };
  for (const job of due.sort((a, b) => String(a.send_at).localeCompare(String(b.send_at)))) {
    const early = Date.parse(String(job.send_at)) - now();
    if (early > 0) await wait(early);
    if (!(await deps.jobs.startScheduled(job.job_id, deps.deadline, new Date(now())))) continue;
    try {
      const recipients = await deps.contents.allRecipients(job.job_id);
      await deps.queue.enqueue(chunkMessages(job.job_id, recipients));
      result.started.push(job.job_id);
    } catch (error) {
      result.notEnqueued.push({
        job_id: job.job_id,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
  return result;
}
