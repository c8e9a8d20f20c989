import { setTimeout as sleep } from 'node:timers/promises';
import { chunkMessages, type EmailQueue } from '../queue/email-queue';
import type { JobContentStore, JobStore } from './job-store';

/**
 * How far ahead each run looks. The starter runs every minute (an EventBridge rule's finest rate):
 * it starts what is due now and waits, within the run, for what falls due before the next one, so a
 * job starts within seconds of its `send_at`, not up to a minute after. Twice the period: a rule's
 * ticks are not to the second, and a job in a gap between two runs' windows would wait a minute.
 * Runs overlap; the conditional start lets exactly one start each job.
 */
export const START_AHEAD_MS = 120_000;
/**
 * Time a run keeps for enqueueing a job it starts (10,000 recipients are 1,000 messages, a few
 * seconds): a job due with less left is left to the next run, never started and cut off.
 */
export const ENQUEUE_BUDGET_MS = 30_000;

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
  /** Not started (the store failed): the next run tries again. */
  notStarted: { job_id: string; error: string }[];
  /** Left to the next run: too little of this one's time was left to enqueue them. */
  deferred: string[];
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
  const result: StartScheduledResult = { started: [], notEnqueued: [], notStarted: [], deferred: [] };
  const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
  for (const job of due.sort((a, b) => String(a.send_at).localeCompare(String(b.send_at)))) {
    const early = Date.parse(String(job.send_at)) - now();
    if (deps.deadline.getTime() - Math.max(early, 0) - now() < ENQUEUE_BUDGET_MS) {
      result.deferred.push(job.job_id);
      continue;
    }
    if (early > 0) await wait(early);
    try {
      // False: cancelled, or started by an overlapping run.
      if (!(await deps.jobs.startScheduled(job.job_id, deps.deadline, new Date(now())))) continue;
    } catch (error) {
      // One job's failure (a throttle, a conflict with its cancel) holds back none of the others.
      result.notStarted.push({ job_id: job.job_id, error: message(error) });
      continue;
    }
    try {
      const recipients = await deps.contents.allRecipients(job.job_id);
      await deps.queue.enqueue(chunkMessages(job.job_id, recipients));
      result.started.push(job.job_id);
    } catch (error) {
      result.notEnqueued.push({ job_id: job.job_id, error: message(error) });
    }
  }
  return result;
}
