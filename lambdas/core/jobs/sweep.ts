import { chunkMessages, type EmailQueue, recipientsOf } from '../queue/email-queue';
import { isEmpty, type QueueGauge } from '../queue/queue-depth';
import { type DeliveryReader, type DeliveryStatus, OUTCOME_STATUSES, type OutcomeStatus } from './deliveries';
import type { JobRecord } from './job';
import type { JobContentStore, JobStore } from './job-store';

export interface SweepDependencies {
  jobs: Pick<
    JobStore,
    'activeJobs' | 'claimReenqueue' | 'noticeRecovery' | 'forgetRecovery' | 'countFromLedger'
  >;
  contents: Pick<JobContentStore, 'allRecipients'>;
  deliveries: Pick<DeliveryReader, 'recipientStates'>;
  queue: Pick<EmailQueue, 'enqueue'>;
  /** The email queue and its dead-letter queue: a message in either is still on its way to an outcome. */
  gauges: { emails: QueueGauge; deadLetters: QueueGauge };
  /**
   * How long after a job's last enqueue the queues' counts can be trusted to include its messages
   * (SQS's approximate counts settle about a minute after sends stop).
   */
  settleMs: number;
  /**
   * How long nothing must have been counted on a job whose every recipient has an outcome before
   * its counters are set from the ledger: the `OutcomeCountingBehind` alarm's threshold, so a
   * counter that is only behind has its alarm up first, and is not pre-empted (its late count would
   * then be dropped as excess, or, after a retry, counted against the retry's recipients).
   */
  ledgerCountAfterMs: number;
  /** When this run's own enqueue ends at the latest (the sweeper function's deadline). */
  deadline: Date;
  now?: () => Date;
}

export interface SweepResult {
  jobsChecked: number;
  /** Running jobs left alone because their messages may still be queued. */
  jobsWaiting: number;
  /** Jobs first seen recoverable this run: they are recovered on a later run, once settled. */
  jobsNoticed: number;
  jobsSwept: number;
  reenqueued: number;
  /** Jobs ended from their ledger: every recipient had an outcome, and their counters had stopped short. */
  jobsCountedFromLedger: number;
  /** Whether both queues were empty when looked at (nothing can be on its way). */
  queuesEmpty: boolean;
  /** Jobs whose recovery could not be done this run (the next run tries again), with why. */
  unrecovered: { jobId: string; reason: string }[];
}

/**
 * When a job's messages were last sent at the latest. Jobs recorded before the deadline existed fall
 * back to their last update (the former sweeper's re-enqueue moved only `updated_at`).
 */
const lastEnqueueEnd = (job: JobRecord) =>
  job.enqueue_deadline
    ? Date.parse(job.enqueue_deadline)
    : Math.max(Date.parse(job.created_at), Date.parse(job.updated_at));

/**
 * Recovery that reads the queue, not the clock. A running job's recipients without an outcome are
 * enqueued again only when none of their messages can still be in a queue: both the email queue and
 * its dead-letter queue were empty (nothing visible, in flight or delayed) on two looks at least the
 * settling time apart, the first of them after the job's last enqueue had ended and settled. A message still queued
 * behind a backlog is therefore never copied, however long the backlog; what was lost (an enqueue
 * cut short by a crash, a queue that lost its messages) is enqueued once the queues drain.
 *
 * The order matters: the queues are looked at before the outcomes are read, so a message consumed in
 * between is seen as an outcome, never as lost. Each re-enqueue is claimed on the job first, so two
 * runs at once never enqueue the same job twice.
 */
export async function sweepStaleJobs(deps: SweepDependencies): Promise<SweepResult> {
  const clock = deps.now ?? (() => new Date());
  const result: SweepResult = {
    jobsChecked: 0,
    jobsWaiting: 0,
    jobsNoticed: 0,
    jobsSwept: 0,
    reenqueued: 0,
    jobsCountedFromLedger: 0,
    queuesEmpty: false,
    unrecovered: [],
  };
  const active = await deps.jobs.activeJobs();
  if (active.length === 0) return result;

  const lookedAt = clock().getTime();
  const [emails, deadLetters] = await Promise.all([
    deps.gauges.emails.depth(),
    deps.gauges.deadLetters.depth(),
  ]);
  result.queuesEmpty = isEmpty(emails) && isEmpty(deadLetters);
  for (const job of active) {
    result.jobsChecked++;
    const settledAt = lastEnqueueEnd(job) + deps.settleMs;
    if (!result.queuesEmpty || settledAt > lookedAt) {
      result.jobsWaiting++;
      // Messages are back in the queues: a sighting before this no longer counts as a first look.
      if (!result.queuesEmpty && job.recovery_seen_at) await forget(deps, job, result);
      continue;
    }
    try {
      // A first sighting only notes the time: SQS's counts can lag a message that just moved (to
      // the dead-letter queue, say) by up to the settling time, so a second empty look, that long
      // later, is what shows nothing of the job is on its way. A sighting from before the job's
      // last enqueue settled does not count.
      const seen = job.recovery_seen_at ? Date.parse(job.recovery_seen_at) : Number.NaN;
      if (!(seen >= settledAt)) {
        await deps.jobs.noticeRecovery(job.job_id, new Date(lookedAt));
        result.jobsNoticed++;
        continue;
      }
      if (seen + deps.settleMs > lookedAt) {
        result.jobsWaiting++;
        continue;
      }
      const [recipients, states] = await Promise.all([
        deps.contents.allRecipients(job.job_id),
        deps.deliveries.recipientStates(job.job_id),
      ]);
      const messages = lostMessages(job.job_id, recipients, states);
      if (messages.length === 0) {
        // Every recipient has an outcome, yet the job runs: the counting of one was lost (its stream
        // record). Once nothing has been counted on the job for the settling time, its counters are
        // set from the ledger, which is the truth they follow.
        const still = Math.max(deps.settleMs, deps.ledgerCountAfterMs);
        if (Date.parse(job.updated_at) + still > lookedAt) {
          result.jobsWaiting++;
          continue;
        }
        const tally = tallyOf(states);
        const outcomes = tally.sent + tally.failed + tally.suppressed + tally.cancelled;
        // Only a ledger that holds exactly the job's recipients is the truth to count from.
        if (recipients.length !== job.total_emails || outcomes !== job.total_emails) {
          result.unrecovered.push({
            jobId: job.job_id,
            reason: `every recipient has an outcome, yet the job is still running, and its ledger (${outcomes} outcomes of ${recipients.length} recipients) does not match its ${job.total_emails}`,
          });
          continue;
        }
        if (await deps.jobs.countFromLedger(job, tally, clock())) result.jobsCountedFromLedger++;
        continue;
      }
      if (!(await deps.jobs.claimReenqueue(job, deps.deadline, clock()))) continue;
      await deps.queue.enqueue(messages);
      result.reenqueued += messages.flatMap(recipientsOf).length;
      result.jobsSwept++;
    } catch (error) {
      // One job's failure must not keep the others from recovering; the next run tries it again.
      result.unrecovered.push({
        jobId: job.job_id,
        reason: error instanceof Error ? error.message : String(error),
      });
    }
  }
  return result;
}

/** The outcomes a job's ledger holds, by status. */
function tallyOf(states: ReadonlyMap<string, DeliveryStatus | undefined>): Record<OutcomeStatus, number> {
  const tally: Record<OutcomeStatus, number> = { sent: 0, failed: 0, suppressed: 0, cancelled: 0 };
  for (const status of states.values())
    if (status !== undefined && (OUTCOME_STATUSES as readonly string[]).includes(status))
      tally[status as OutcomeStatus]++;
  return tally;
}

/**
 * The messages of a job's recipients without an outcome: those a retry queued again (or that were
 * claimed on their own) each in a message of its own, as the retry sent them; the others in their
 * chunks, under the same numbers as when the job was accepted (`chunkMessages`), so a chunk's claim
 * still keeps them from being sent twice.
 */
function lostMessages(
  jobId: string,
  recipients: readonly string[],
  states: ReadonlyMap<string, DeliveryStatus | undefined>,
) {
  const alone = recipients.filter((recipient) => {
    const status = states.get(recipient);
    return status === 'queued' || status === 'sending';
  });
  const inChunks = new Set(recipients.filter((recipient) => states.get(recipient) === undefined));
  return [
    ...chunkMessages(jobId, recipients, { only: inChunks }),
    ...alone.map((recipient) => ({ job_id: jobId, recipient })),
  ];
}

async function forget(deps: SweepDependencies, job: JobRecord, result: SweepResult): Promise<void> {
  try {
    await deps.jobs.forgetRecovery(job.job_id);
  } catch (error) {
    result.unrecovered.push({
      jobId: job.job_id,
      reason: `could not forget its sighting: ${error instanceof Error ? error.message : String(error)}`,
    });
  }
}
