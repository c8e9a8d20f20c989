import { randomUUID } from 'node:crypto';
import { chunks, mapConcurrently } from '../concurrency';
import type { Nonprofit } from '../nonprofits/nonprofit';
import { isErasedKey } from '../people/address-keys';
import { suppressedBecause } from '../suppressions/suppression';
import {
  type BatchResult,
  type BatchRun,
  emptyResult,
  errorText,
  type ProcessEmailsDependencies,
  type ReceivedMessage,
  settleRetries,
} from './consumer/batch';
import { claimAll, returnAfterLease } from './consumer/claim-lifecycle';
import { cancelledOutcome, type Decided, handedOver, outcomeBase, record } from './consumer/outcomes';
import {
  DEFAULT_WAITS,
  returnWaitingChunks,
  STORE_FAILURE_MAX_DELAY_SECONDS,
  waitInQueue,
} from './consumer/pacing';
import { type CompiledJob, groupByJob, type Item, lookedAtJob } from './consumer/received-batch';
import { prepareSending, SEND_CONCURRENCY, SEND_MARGIN_MS, sendOne, type ToSend } from './consumer/send-step';
import { renderEmail } from './render-email';
import { MAX_SNAPSHOT_NONPROFITS, type RenderedEmailStore, type RenderSnapshot } from './rendered-emails';

export type {
  BatchResult,
  Log,
  ProcessEmailsDependencies,
  ReceivedMessage,
  UnsubscribeLinks,
} from './consumer/batch';
export { recordDeadLetters } from './consumer/dead-letters';

// The consumer of the email queue: a batch in (consumer/received-batch.ts), each job's recipients
// claimed (claim-lifecycle.ts), checked, rendered and sent (send-step.ts) at the pace allowed
// (pacing.ts), and their outcomes recorded (outcomes.ts). Dead letters: consumer/dead-letters.ts.

/**
 * Renders, sends and records each email of a batch, one recording transaction per job. Each
 * recipient is claimed before it is sent (see `DeliveryClaims`), so a duplicate message, a retry
 * after a failed recording, a consumer that throws or times out, never sends an email twice. A
 * recipient queued without its nonprofit's values whose nonprofit was deleted since (see
 * `QueuedNonprofit`), or whose email renders too large, fails at once; a throttled, unavailable or
 * paused transport makes the email wait in the queue, uncounted.
 */
export async function processEmailBatch(
  deps: ProcessEmailsDependencies,
  messages: readonly ReceivedMessage[],
  remainingMs: () => number = () => Number.POSITIVE_INFINITY,
): Promise<BatchResult> {
  const log = deps.log ?? (() => undefined);
  const result = emptyResult();
  const groups = groupByJob(messages, log);
  const items = [...groups.values()].flat();
  const nonprofitOf = await nonprofitsOf(deps, items);
  const run: BatchRun = {
    deps,
    log,
    result,
    remainingMs,
    // A short timeout keeps a quarter of itself for the recording, never less.
    marginMs: Math.min(SEND_MARGIN_MS, remainingMs() / 4),
    waits: deps.waits ?? DEFAULT_WAITS,
    cancelledJobs: new Set(),
    cancelLooks: new Map(),
    waiting: new Map(),
  };
  for (const [jobId, jobItems] of groups) {
    const group = await lookedAtJob(deps, jobId, jobItems, result, log);
    if (!group) continue;
    // The look taken before the claims is the first look at the job's cancel.
    run.cancelLooks.set(jobId, { askedAt: group.lookedAt, cancelled: Promise.resolve(group.look.cancelled) });
    await processJob(run, group.job, group.items, nonprofitOf);
  }
  await returnWaitingChunks(run);
  // A chunk message is one message for all its recipients: named once, however many asked.
  settleRetries(result, items);
  return result;
}

/** The name, address and email each recipient's email is rendered with; undefined: not registered. */
type NonprofitOf = (item: Item) => RenderedNonprofit | undefined;
type RenderedNonprofit = Pick<Nonprofit, 'name' | 'address' | 'email'>;

/**
 * The values each item is rendered with: those its chunk carried from acceptance, else the
 * registry's, read (eventually consistent, half the cost) only for the items that carried none.
 */
async function nonprofitsOf(
  deps: Pick<ProcessEmailsDependencies, 'nonprofits'>,
  items: Item[],
): Promise<NonprofitOf> {
  const unread = items.filter((item) => !item.queued).map(({ email }) => email.recipient);
  const read = unread.length > 0 ? await deps.nonprofits.getMany(unread, { consistent: false }) : new Map();
  return (item) =>
    item.queued ? { ...item.queued, email: item.email.recipient } : read.get(item.email.recipient);
}

async function processJob(
  run: BatchRun,
  job: CompiledJob,
  items: Item[],
  nonprofitOf: NonprofitOf,
): Promise<void> {
  const { deps, log } = run;
  const decided: Decided[] = [];
  const toSend: ToSend[] = [];
  const claimed = await claimAll(deps, run.result, job, items, (held, leaseUntil) =>
    returnAfterLease(run, held, leaseUntil),
  );
  const prepared = await prepareSending(run, job, claimed);
  if (!prepared) return;
  const { suppressed, linkSecret, cancelled } = prepared;
  // A suppressed cc address gets no copy; the recipient still gets the email. An erased address's
  // key (see `acceptJob`) is no address: never a copy, nor in the visible Cc, even once its
  // suppression is lifted.
  const cc = job.content.cc.filter((address) => !suppressed.has(address) && !isErasedKey(address));
  for (const { item, claim } of claimed) {
    const base = { ...outcomeBase(job, item, claim), cc };
    const sqsMessageId = item.message.messageId;
    if (claim.state === 'handedOver') {
      decided.push(handedOver({ ...base, cc: job.content.cc }, claim, item));
      continue;
    }
    if (cancelled) {
      decided.push(cancelledOutcome(base, item, Object.keys(claim.copies).length));
      continue;
    }
    const suppression = suppressed.get(item.email.recipient);
    if (suppression) {
      decided.push({
        outcome: { ...base, status: 'suppressed', error: suppressedBecause(suppression) },
        sqsMessageId,
      });
      continue;
    }
    const nonprofit = nonprofitOf(item);
    if (!nonprofit) {
      const error = 'The nonprofit was deleted after the job was accepted.';
      decided.push({
        outcome: { ...base, status: 'failed', error, reason: 'nonprofitDeleted' },
        sqsMessageId,
      });
      continue;
    }
    const rendered = renderEmail(job, nonprofit, deps.settings);
    if ('tooLarge' in rendered) {
      const error = rendered.tooLarge;
      decided.push({ outcome: { ...base, status: 'failed', error, reason: 'tooLarge' }, sqsMessageId });
      continue;
    }
    toSend.push({ item, token: claim.token, base, body: rendered, copiesSent: claim.copies, nonprofit });
  }

  let sendable = toSend;
  if (deps.rendered && toSend.length > 0) {
    try {
      await keepSnapshots(deps.rendered, job, toSend);
    } catch (error) {
      log(
        'ERROR',
        'Could not keep what the emails are rendered from; the emails wait in the queue and are tried again',
        {
          job_id: job.jobId,
          error: errorText(error),
        },
      );
      for (const { item, token } of toSend)
        await waitInQueue(run, job, item, token, run.waits.throttledSeconds, {
          maxSeconds: STORE_FAILURE_MAX_DELAY_SECONDS,
        });
      sendable = [];
    }
  }
  await mapConcurrently(sendable, SEND_CONCURRENCY, async (entry) => {
    const outcome = await sendOne(run, job, entry, linkSecret);
    if (outcome) decided.push(outcome);
  });
  await record(deps, run.result, job, decided);
}

/**
 * Keeps the values the emails are rendered from, a snapshot per batch (or per
 * `MAX_SNAPSHOT_NONPROFITS`), before any is sent, and names it on each email's outcome: the job's
 * emails are rendered again from it when read, never stored whole (a write of a kilobyte or more
 * per email), and never with a real unsubscribe link.
 */
async function keepSnapshots(
  rendered: Pick<RenderedEmailStore, 'putSnapshot'>,
  job: CompiledJob,
  toSend: ToSend[],
): Promise<void> {
  await Promise.all(
    chunks(toSend, MAX_SNAPSHOT_NONPROFITS).map(async (group) => {
      const snapshot: RenderSnapshot = {
        id: randomUUID(),
        nonprofits: Object.fromEntries(
          group.map(({ item, nonprofit: { name, address } }) => [item.email.recipient, { name, address }]),
        ),
      };
      await rendered.putSnapshot(job.jobId, snapshot);
      for (const entry of group) entry.base.snapshot = snapshot.id;
    }),
  );
}
