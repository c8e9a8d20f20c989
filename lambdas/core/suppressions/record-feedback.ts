import { mapConcurrently } from '../concurrency';
import type { Log, ReceivedMessage } from '../jobs/consumer/batch';
import type { FeedbackLedger, FeedbackNoted } from '../jobs/deliveries';
import type { JobStore } from '../jobs/job-store';
import type { SuppressionList } from './repository';
import { type Feedback, MalformedFeedbackError, parseFeedback, suppresses } from './ses-feedback';

export interface RecordFeedbackDependencies {
  suppressions: Pick<SuppressionList, 'add'>;
  ledger: FeedbackLedger;
  jobs: Pick<JobStore, 'get'>;
  log: Log;
  now?: () => Date;
}

/** What a batch of SES reports did, for the handler's answer and metrics. */
export interface FeedbackBatchResult {
  /** Messages to receive again (a store failed, or the message is not an SES event and goes on to the dead-letter queue). */
  retry: string[];
  /** Reported addresses, by kind of report (a report may name several), each report counted once where its job tells (not-spam reports nowhere). */
  bounced: number;
  transientBounces: number;
  complained: number;
  /** Addresses this batch put on the suppression list (or made a stronger reason on it). */
  suppressed: number;
  /** Reports counted on a job's delivery for the first time. */
  recorded: number;
  /**
   * Hard bounces and complaints on this system's emails, new or handed over again: each may have
   * moved the reputation window (the guard looks after any, so a batch retried after the guard
   * failed looks again).
   */
  reputationReports: number;
}

/** Messages of a batch handled at once: each makes a few small DynamoDB writes. */
const CONCURRENT_MESSAGES = 5;

/**
 * Acts on SES's bounce and complaint reports. A permanent bounce or a complaint suppresses each
 * reported address (whichever sender's email it was about: an address that bounced for good takes
 * no mail, and one that complained wants none from this account); a transient bounce suppresses
 * nothing. A report on this system's email (its `job_id` tag, and the message id on the delivery) is
 * also noted on the recipient's delivery and counted on the job, once per report. Both writes are
 * idempotent, so a redelivered message changes nothing (but suppresses again an address an operator
 * lifted in between); a failed write, or a report on an email whose hand-over is not written yet,
 * sends the message back to the queue.
 */
export async function recordFeedback(
  deps: RecordFeedbackDependencies,
  messages: readonly ReceivedMessage[],
): Promise<FeedbackBatchResult> {
  const result: FeedbackBatchResult = {
    retry: [],
    bounced: 0,
    transientBounces: 0,
    complained: 0,
    suppressed: 0,
    recorded: 0,
    reputationReports: 0,
  };
  await mapConcurrently(messages, CONCURRENT_MESSAGES, async (message) => {
    let feedback: Feedback | undefined;
    try {
      feedback = parseFeedback(message.body, deps.now);
    } catch (error) {
      if (!(error instanceof MalformedFeedbackError)) throw error;
      // Never an SES event: retried until the dead-letter queue keeps it for an operator (it alarms).
      deps.log('ERROR', 'Feedback message is not an SES event', {
        message_id: message.messageId,
        problem: error.message,
      });
      result.retry.push(message.messageId);
      return;
    }
    // An event type this system does not act on (the configuration set may publish more).
    if (!feedback) return;
    try {
      const outcome = await act(deps, feedback);
      if (outcome.pending) {
        deps.log(
          'INFO',
          'SES reported on an email not recorded as handed over yet; the report is read again',
          {
            message_id: message.messageId,
            feedback_id: feedback.feedbackId,
            job_id: feedback.jobId,
          },
        );
        result.retry.push(message.messageId);
        return;
      }
      result.suppressed += outcome.suppressed;
      result.recorded += outcome.recorded;
      if (feedback.kind === 'bounce' || feedback.kind === 'complaint')
        result.reputationReports += outcome.matched;
      if (feedback.kind === 'bounce') result.bounced += outcome.fresh;
      else if (feedback.kind === 'transient_bounce') result.transientBounces += outcome.fresh;
      else if (feedback.kind === 'complaint') result.complained += outcome.fresh;
    } catch (error) {
      deps.log('ERROR', 'Could not record SES feedback; the message is retried', {
        message_id: message.messageId,
        feedback_id: feedback.feedbackId,
        error: error instanceof Error ? error.message : String(error),
      });
      result.retry.push(message.messageId);
    }
  });
  return result;
}

/**
 * Notes the report on each reported recipient's delivery, then suppresses the address if the report
 * says so: with the job and its API key as the cause only when the report matched that job's
 * email (a tag alone proves nothing: anyone sending through the set may set one).
 */
async function act(
  deps: RecordFeedbackDependencies,
  feedback: Feedback,
): Promise<{ suppressed: number; recorded: number; fresh: number; matched: number; pending: boolean }> {
  const job = feedback.jobId === undefined ? undefined : await deps.jobs.get(feedback.jobId);
  let suppressed = 0;
  let recorded = 0;
  let fresh = 0;
  let matched = 0;
  for (const email of feedback.recipients) {
    const noted: FeedbackNoted = job
      ? await deps.ledger.recordFeedback(job.job_id, email, {
          kind: feedback.kind,
          feedbackId: feedback.feedbackId,
          messageId: feedback.messageId,
          detail: feedback.detail,
          at: feedback.at,
        })
      : 'unmatched';
    if (noted === 'pending') return { suppressed, recorded, fresh, matched, pending: true };
    if (noted === 'recorded') recorded++;
    if (noted === 'recorded' || noted === 'duplicate') matched++;
    if (noted !== 'duplicate') fresh++;
    if (suppresses(feedback)) {
      const matched = job !== undefined && (noted === 'recorded' || noted === 'duplicate');
      const { created } = await deps.suppressions.add({
        email,
        reason: feedback.kind === 'complaint' ? 'complained' : 'bounced',
        note: feedback.detail,
        ...(matched ? { job_id: job.job_id, api_key_id: job.api_key_id } : {}),
      });
      // `created` is also true when a stronger reason replaced a weaker one.
      if (created) suppressed++;
    }
  }
  deps.log('INFO', 'SES feedback recorded', {
    kind: feedback.kind,
    feedback_id: feedback.feedbackId,
    job_id: job?.job_id ?? null,
    recipients: feedback.recipients.length,
    suppressed,
    recorded,
  });
  return { suppressed, recorded, fresh, matched, pending: false };
}
