import {
  type BatchResult,
  emptyResult,
  errorText,
  type ProcessEmailsDependencies,
  type ReceivedMessage,
  settleRetries,
} from './batch';
import { claimAll } from './claim-lifecycle';
import { cancelledOutcome, type Decided, handedOver, outcomeBase, record } from './outcomes';
import { type CompiledJob, groupByJob } from './received-batch';

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
  const groups = await groupByJob(deps, messages, result, deps.log ?? (() => undefined));
  for (const { job, items, look } of groups) {
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
  settleRetries(
    result,
    groups.flatMap(({ items }) => items),
  );
  return result;
}
