import {
  type BatchResult,
  emptyResult,
  type ProcessEmailsDependencies,
  type ReceivedMessage,
  settleRetries,
} from './batch';
import { claimAll } from './claim-lifecycle';
import { cancelledOutcome, type Decided, handedOver, outcomeBase, record } from './outcomes';
import { groupByJob, lookedAtJob } from './received-batch';

/**
 * Records messages that exhausted their receives as failed, so their jobs still end; an email an
 * earlier attempt handed to the transport is recorded as sent, and one of a cancelled job as
 * cancelled (its quota given back). Claims keep this from racing a consumer.
 */
export async function recordDeadLetters(
  deps: Pick<ProcessEmailsDependencies, 'contents' | 'deliveries' | 'jobs' | 'quota' | 'log' | 'now'>,
  messages: readonly ReceivedMessage[],
): Promise<BatchResult> {
  const result = emptyResult();
  const log = deps.log ?? (() => undefined);
  const groups = groupByJob(messages, log);
  for (const [jobId, jobItems] of groups) {
    const group = await lookedAtJob(deps, jobId, jobItems, result, log);
    if (!group) continue;
    const { job, items, look } = group;
    const claimed = await claimAll(deps, result, job, items);
    const { cancelled } = look;
    const decided: Decided[] = claimed.map(({ item, claim }) => {
      const base = outcomeBase(job, item, claim);
      if (claim.state === 'handedOver') return handedOver(base, claim, item);
      if (cancelled) return cancelledOutcome(base, item);
      const error = 'Not delivered: every attempt failed and the message reached the dead-letter queue.';
      return {
        outcome: { ...base, status: 'failed', error, reason: 'deadLetter' },
        sqsMessageId: item.message.messageId,
      } satisfies Decided;
    });
    await record(deps, result, job, decided);
  }
  settleRetries(result, [...groups.values()].flat());
  return result;
}
