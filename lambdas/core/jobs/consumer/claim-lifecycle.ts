import { backoff } from '../../concurrency';
import { type ChunkClaim, type Claim, ClaimLostError } from '../deliveries';
import { type BatchResult, type BatchRun, errorText, type ProcessEmailsDependencies } from './batch';
import type { CompiledJob, Item } from './received-batch';

// A recipient's claim, from taking it to the message id written under it (or its message timed to
// come back when another consumer holds it). See `DeliveryClaims` for what a claim guarantees.

/**
 * Claims each message's recipients: a chunk message's with one claim on its chunk, a recipient
 * message's on its own. Recipients already done are duplicates; a message another consumer holds
 * goes back to the queue (told to `onHeld`); the rest come back with their claims. A failure to
 * claim sends the messages back (a claim that was written stays until its lease ends).
 */
export async function claimAll(
  deps: Pick<ProcessEmailsDependencies, 'deliveries' | 'log'>,
  result: BatchResult,
  job: CompiledJob,
  items: Item[],
  onHeld: (item: Item, leaseUntil: number) => Promise<void> = async () => undefined,
): Promise<{ item: Item; claim: HeldClaim }[]> {
  const byMessage = new Map<string, Item[]>();
  for (const item of items.filter(({ chunk }) => chunk !== undefined)) {
    const group = byMessage.get(item.message.messageId);
    if (group) group.push(item);
    else byMessage.set(item.message.messageId, [item]);
  }
  const [alone, ...chunked] = await Promise.all([
    claimAlone(
      deps,
      result,
      job,
      items.filter(({ chunk }) => chunk === undefined),
      onHeld,
    ),
    ...[...byMessage.values()].map((group) => claimChunk(deps, result, job, group, onHeld)),
  ]);
  return [...alone, ...chunked.flat()];
}

/** How one kind of message's recipients are claimed: those held come back with their claims. */
type ClaimStep = (
  deps: Pick<ProcessEmailsDependencies, 'deliveries' | 'log'>,
  result: BatchResult,
  job: CompiledJob,
  items: Item[],
  onHeld: (item: Item, leaseUntil: number) => Promise<void>,
) => Promise<{ item: Item; claim: HeldClaim }[]>;

/** One chunk message's recipients, under one claim on the chunk. */
const claimChunk: ClaimStep = async (deps, result, job, items, onHeld) => {
  const [first] = items as [Item, ...Item[]];
  const chunk = first.chunk as NonNullable<Item['chunk']>;
  let claim: ChunkClaim;
  try {
    claim = await deps.deliveries.claimChunk(job.jobId, chunk.chunk, chunk.recipients);
  } catch (error) {
    deps.log?.('ERROR', 'Could not claim a chunk of recipients; the message will be retried', {
      job_id: job.jobId,
      chunk: chunk.chunk,
      error: errorText(error),
    });
    result.retry.push(first.message.messageId);
    return [];
  }
  if (claim.state === 'held') {
    result.retry.push(first.message.messageId);
    await onHeld(first, claim.leaseUntil);
    return [];
  }
  const held: { item: Item; claim: HeldClaim }[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    const found = claim.found?.get(item.email.recipient);
    // Sent only if nothing but its copies is recorded: an outcome is done, and a recipient a retry
    // queued again (or claimed on its own) is its own message's to send.
    if (seen.has(item.email.recipient) || found?.status !== undefined) result.duplicates++;
    else
      held.push({
        item,
        claim: { state: 'claimed', token: claim.token, copies: found?.copy_ids ?? {} },
      });
    seen.add(item.email.recipient);
  }
  return held;
};

/** Recipient messages' recipients, each under a claim of its own. */
const claimAlone: ClaimStep = async (deps, result, job, items, onHeld) => {
  if (items.length === 0) return [];
  let claims: Map<string, Claim>;
  try {
    claims = await deps.deliveries.claim(
      job.jobId,
      items.map(({ email, message }) => ({ recipient: email.recipient, attempts: message.receiveCount })),
    );
  } catch (error) {
    deps.log?.('ERROR', 'Could not claim recipients; the messages will be retried', {
      job_id: job.jobId,
      error: errorText(error),
    });
    result.retry.push(...items.map(({ message }) => message.messageId));
    return [];
  }
  const held: { item: Item; claim: HeldClaim }[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    const claim = claims.get(item.email.recipient);
    // The same recipient twice in one batch: the first message carries it.
    if (seen.has(item.email.recipient) || claim?.state === 'done') result.duplicates++;
    else if (!claim) result.retry.push(item.message.messageId);
    else if (claim.state === 'held') {
      result.retry.push(item.message.messageId);
      await onHeld(item, claim.leaseUntil);
    } else held.push({ item, claim });
    seen.add(item.email.recipient);
  }
  return held;
};

export type HeldClaim = Extract<Claim, { token: string }>;

/** Attempts at writing a message id under a claim before giving up on it. */
export const HAND_OVER_ATTEMPTS = 4;

/**
 * Writes a cc copy's message id where the recipient's claim keeps it (`write`), retrying. Answers
 * `written`; `lost` when the claim is no longer ours (no retry helps); or `unwritten` when the
 * store kept failing: then the claim must not be given back (the next claim would send that copy
 * again at once), and a copy whose id is never written is sent again once the lease ends.
 */
export async function handOver(
  run: BatchRun,
  job: CompiledJob,
  messageId: string,
  write: () => Promise<void>,
): Promise<'written' | 'lost' | 'unwritten'> {
  for (let attempt = 0; ; attempt++) {
    try {
      await write();
      return 'written';
    } catch (error) {
      // The claim is no longer ours (its lease lapsed and another consumer took it): no retry helps,
      // and the store is working, so other emails go on.
      if (error instanceof ClaimLostError) {
        run.log('WARN', 'The claim was taken over before the message id was written', {
          job_id: job.jobId,
          ses_message_id: messageId,
        });
        return 'lost';
      }
      if (attempt + 1 >= HAND_OVER_ATTEMPTS) {
        unwritten(run, job, messageId, error);
        return 'unwritten';
      }
      await backoff(attempt, 50);
    }
  }
}

/**
 * A message id could not be written: only if the batch's recording also fails can that email go
 * twice. No further email of this invocation is sent: it could only widen that window.
 */
export function unwritten(run: BatchRun, job: CompiledJob, messageId: string | null, error: unknown): void {
  run.log('ERROR', 'Could not write the message id under the claim; sending stops for this batch', {
    job_id: job.jobId,
    ses_message_id: messageId,
    ...(error === undefined ? {} : { error: errorText(error) }),
  });
  if (!run.stop) run.stop = 'unrecorded';
}

/**
 * Held by another consumer: it is sending now, or died (a crash, a timeout) and its claim lapses
 * with the lease. The message is seen again just after that, not after the visibility timeout.
 */
export async function returnAfterLease({ deps, log }: BatchRun, { message }: Item, leaseUntil: number) {
  if (!message.receiptHandle) return;
  const seconds = (leaseUntil - (deps.now?.() ?? new Date()).getTime()) / 1000 + 1;
  try {
    await deps.queue.returnAfter(message.receiptHandle, seconds);
  } catch (error) {
    log('WARN', 'Could not time the return of a held message', { error: errorText(error) });
  }
}
