import { backoff } from '../../concurrency';
import type { Claim, DeliveryOutcome, RecordResult } from '../deliveries';
import type { BatchResult, BatchRun, ProcessEmailsDependencies } from './batch';
import { errorText } from './batch';
import { HAND_OVER_ATTEMPTS, type HeldClaim, unwritten } from './claim-lifecycle';
import type { CompiledJob, Item } from './received-batch';

/** An outcome decided for the recipient of one SQS message (`sqsMessageId`, which goes back to the queue if recording fails). */
export type Decided = { outcome: DeliveryOutcome; sqsMessageId: string };

/**
 * Records a job's outcomes and notes what that did in the batch's result; if recording fails, the
 * messages go back to the queue: their claims stay, so the next attempt records a handed-over email
 * as sent without sending it again; those that were written count. Answers whether every outcome
 * was written (recorded, or found recorded before).
 */
export async function record(
  deps: Pick<ProcessEmailsDependencies, 'deliveries' | 'log' | 'now' | 'quota'>,
  result: BatchResult,
  job: CompiledJob,
  decided: Decided[],
  { retryOnFailure = true }: { retryOnFailure?: boolean } = {},
): Promise<boolean> {
  if (decided.length === 0) return true;
  let recorded: RecordResult;
  try {
    recorded = await deps.deliveries.record(
      job.jobId,
      decided.map(({ outcome }) => outcome),
    );
  } catch (error) {
    recorded = { recorded: [], duplicates: 0, failed: decided.map(({ outcome }) => outcome), error };
  }
  const now = (deps.now?.() ?? new Date()).getTime();
  const accepted = Date.parse(job.content.accepted_at);
  // What was written counts (and a cancelled one is refunded) even when another write failed.
  for (const outcome of recorded.recorded) {
    if (outcome.status === 'sent') result.sent++;
    else if (outcome.status === 'suppressed') result.suppressed++;
    else if (outcome.status === 'cancelled') result.cancelled++;
    else if (outcome.reason) result.failed[outcome.reason]++;
    if (Number.isFinite(accepted)) result.latenciesMs.push(now - accepted);
  }
  result.duplicates += recorded.duplicates;
  await refundCancelled(
    deps,
    job,
    recorded.recorded.filter(({ status }) => status === 'cancelled'),
  );
  if (recorded.failed.length === 0) return true;
  if (!retryOnFailure) return false;
  deps.log?.('ERROR', 'Could not record outcomes; their messages will be retried', {
    job_id: job.jobId,
    outcomes: recorded.failed.length,
    error: errorText(recorded.error),
  });
  const failed = new Set(recorded.failed.map(({ recipient }) => recipient));
  result.retry.push(
    ...decided.filter(({ outcome }) => failed.has(outcome.recipient)).map(({ sqsMessageId }) => sqsMessageId),
  );
  return false;
}

/**
 * Gives the key's quota back what these cancelled recipients would have sent (each with its cc
 * copies, less those an earlier attempt sent), once: only outcomes this call recorded count.
 * Failing that, the count stays (the safe side).
 */
async function refundCancelled(
  deps: Pick<ProcessEmailsDependencies, 'quota' | 'log'>,
  job: CompiledJob,
  cancelled: readonly DeliveryOutcome[],
): Promise<void> {
  const charged = job.content.quota;
  const unsent = cancelled.reduce(
    (total, outcome) => total + 1 + job.content.cc.length - (outcome.copiesSent ?? 0),
    0,
  );
  if (!deps.quota || !charged || unsent <= 0) return;
  try {
    await deps.quota.refund(charged.api_key_id, charged.day, unsent);
  } catch (error) {
    deps.log?.('WARN', 'Could not give cancelled recipients back to the quota', {
      job_id: job.jobId,
      error: errorText(error),
    });
  }
}

/** What every outcome of a claimed recipient carries. */
export type OutcomeBase = ReturnType<typeof outcomeBase>;
export const outcomeBase = (job: CompiledJob, item: Item, claim: HeldClaim) => ({
  recipient: item.email.recipient,
  cc: job.content.cc,
  attempts: item.message.receiveCount,
  claimToken: claim.token,
  /** Set for a chunk's recipient: its outcome is written only if it has none (see `ChunkClaims`). */
  chunk: item.chunk?.chunk,
  /** The snapshot the email was rendered from, once it is kept (see `RenderedEmailStore`). */
  snapshot: undefined as string | undefined,
});

/** An earlier attempt's email the transport took: recorded sent under its message id, never sent again. */
export const handedOver = (
  base: OutcomeBase,
  claim: Extract<Claim, { state: 'handedOver' }>,
  item: Item,
): Decided => ({
  outcome: { ...base, status: 'sent', messageId: claim.messageId, snapshot: claim.snapshot },
  sqsMessageId: item.message.messageId,
});

/**
 * A recipient of a cancelled job: recorded without an email. `copiesSent` cc copies left in an
 * earlier attempt (they are not refunded).
 */
export const cancelledOutcome = (base: OutcomeBase, item: Item, copiesSent = 0): Decided => ({
  outcome: {
    ...base,
    status: 'cancelled',
    error: 'Not sent: the job was cancelled first.',
    ...(copiesSent > 0 ? { copiesSent } : {}),
  },
  sqsMessageId: item.message.messageId,
});

/**
 * Records a sent email's outcome (with its message id) as soon as the transport took it, retrying.
 * Answers whether it was written; if not, no further email of this invocation is sent.
 */
export async function recordSent(run: BatchRun, job: CompiledJob, decided: Decided): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    if (await record(run.deps, run.result, job, [decided], { retryOnFailure: false })) return true;
    if (attempt + 1 >= HAND_OVER_ATTEMPTS) {
      unwritten(run, job, decided.outcome.messageId ?? null, undefined);
      return false;
    }
    await backoff(attempt, 50);
  }
}
