import type { Nonprofit } from '../../nonprofits/nonprofit';
import type { Suppression } from '../../suppressions/suppression';
import { signUnsubscribeToken } from '../../suppressions/unsubscribe-token';
import { DeliveryError, type RenderedEmail } from '../../transport/transport';
import { forReader, type RenderedBody } from '../render-email';
import { type BatchRun, errorText, type ProcessEmailsDependencies, type UnsubscribeLinks } from './batch';
import { type HeldClaim, handOver } from './claim-lifecycle';
import { cancelledOutcome, type Decided, type OutcomeBase, recordSent } from './outcomes';
import { STORE_FAILURE_MAX_DELAY_SECONDS, waitInQueue } from './pacing';
import type { CompiledJob, Item } from './received-batch';

/**
 * How old a look at a job's cancel may be when an email starts. A look is a strongly consistent
 * read; the batch's senders share it for this long, so a fast sender reads about once a second
 * rather than once an email, and no email starts more than this long after a cancel is recorded.
 */
export const CANCEL_LOOK_MAX_AGE_MS = 1_000;

/** Whether the job was cancelled, from a look at most `CANCEL_LOOK_MAX_AGE_MS` old (a fresh one if need be). */
export function lookForCancel(run: BatchRun, job: CompiledJob): Promise<boolean> {
  const now = (run.deps.now?.() ?? new Date()).getTime();
  const last = run.cancelLooks.get(job.jobId);
  if (last && now - last.askedAt <= CANCEL_LOOK_MAX_AGE_MS) return last.cancelled;
  const look = {
    askedAt: now,
    cancelled: run.deps.jobs.sendingLook(job.jobId).then((look) => look.cancelled),
  };
  run.cancelLooks.set(job.jobId, look);
  // A failed look is not kept: the next sender asks again.
  look.cancelled.catch(() => {
    if (run.cancelLooks.get(job.jobId) === look) run.cancelLooks.delete(job.jobId);
  });
  return look.cancelled;
}

/**
 * Emails sent at once by one environment (each waits its turn at the pacer). At SES's tens of
 * milliseconds a call, ten in flight carry over a hundred sends a second: more than an
 * environment's share of the rate (about ten a second), so the pacer, not this, sets the pace, and a
 * batch that may go faster (the `record` transport, a high rate) is not held to four at a time.
 */
export const SEND_CONCURRENCY = 10;
/**
 * An email is started only with this much of the invocation left, so that its hand-over and the
 * batch's recording finish before the timeout. What is left waits in the queue for the next invocation.
 */
export const SEND_MARGIN_MS = 5_000;
/**
 * A claimed recipient's email, rendered, ready for the transport: the body is the same for every
 * reader, and each reader's message gets its own footer and link. `copiesSent` are the cc copies an
 * earlier attempt handed over, not sent again.
 */
export type ToSend = {
  item: Item;
  token: string;
  base: OutcomeBase;
  body: RenderedBody;
  copiesSent: Readonly<Record<string, string>>;
  /** The values it was rendered with (kept in the batch's snapshot when rendered emails are kept). */
  nonprofit: Pick<Nonprofit, 'name' | 'address'>;
};

/**
 * What sending needs beyond the claims: the suppressed addresses among the claimed recipients (an
 * earlier attempt's handed-over email is sent already) and the job's cc, and the secret that signs
 * unsubscribe links. If either cannot be read, nothing is sent: the emails wait in the queue and
 * `undefined` says so.
 */
export async function prepareSending(
  run: BatchRun,
  job: CompiledJob,
  claimed: { item: Item; claim: HeldClaim }[],
): Promise<
  { suppressed: Map<string, Suppression>; linkSecret: string | undefined; cancelled: boolean } | undefined
> {
  const toCheck = claimed
    .filter(({ claim }) => claim.state === 'claimed')
    .map(({ item }) => item.email.recipient);
  if (toCheck.length === 0) return { suppressed: new Map(), linkSecret: undefined, cancelled: false };
  try {
    // The job's look is the one its messages were grouped after, if it is at most
    // `CANCEL_LOOK_MAX_AGE_MS` old, else a new one: a cancel stops what starts a second after it.
    // Suppressions eventually consistent, at half the cost: one recorded within the last second may
    // be missed, as one recorded just after this read would be.
    const [suppressed, linkSecret, cancelled] = await Promise.all([
      run.deps.suppressions.getMany([...toCheck, ...job.content.cc], { consistent: false }),
      // Links are sealed with the secret's current version.
      run.deps.unsubscribe?.secret.versions().then((versions) => versions.current),
      lookForCancel(run, job),
    ]);
    return { suppressed, linkSecret, cancelled };
  } catch (error) {
    run.log(
      'ERROR',
      'Could not read the suppression list, the link secret or the job; the emails wait in the queue',
      {
        job_id: job.jobId,
        error: errorText(error),
      },
    );
    for (const { item, claim } of claimed) {
      if (claim.state === 'claimed')
        await waitInQueue(run, job, item, claim.token, run.waits.throttledSeconds, {
          maxSeconds: STORE_FAILURE_MAX_DELAY_SECONDS,
        });
      else run.result.retry.push(item.message.messageId);
    }
    return undefined;
  }
}

/**
 * The reader's own link: it unsubscribes only the address this message is delivered to, and names
 * the recipient whose email a cc copy was, whose ledger entry notes the unsubscribe.
 */
export function unsubscribeLink(
  deps: ProcessEmailsDependencies,
  secret: string,
  job: CompiledJob,
  reader: string,
  recipient: string,
): NonNullable<RenderedEmail['unsubscribe']> {
  const links = deps.unsubscribe as UnsubscribeLinks;
  const token = signUnsubscribeToken(secret, {
    email: reader,
    jobId: job.jobId,
    ...(reader === recipient ? {} : { recipient }),
  });
  return { url: `${links.url}?token=${token}`, mailto: links.mailto };
}

/** One reader's message of a recipient's email: the visible To and Cc of all, that reader's footer and link. */
function messageFor(
  run: BatchRun,
  job: CompiledJob,
  { item, base, body }: ToSend,
  reader: string,
  linkSecret: string | undefined,
): RenderedEmail {
  const unsubscribe =
    linkSecret === undefined
      ? undefined
      : unsubscribeLink(run.deps, linkSecret, job, reader, item.email.recipient);
  return {
    to: item.email.recipient,
    cc: base.cc,
    reader,
    jobId: job.jobId,
    ...forReader(body, run.deps.settings, reader, unsubscribe?.url),
    ...(unsubscribe ? { unsubscribe } : {}),
  };
}

/**
 * Waits this environment's turn to send one message. Answers `go`, or, when sending must stop (time
 * is short, sending is paused, the store is failing), puts the email back to wait and answers nothing.
 */
async function takeTurn(
  run: BatchRun,
  job: CompiledJob,
  item: Item,
  token: string,
): Promise<'go' | undefined> {
  const pacerWaitMs = run.deps.pacer?.waitMs() ?? 0;
  if (!run.stop && run.remainingMs() - pacerWaitMs < run.marginMs) run.stop = 'deadline';
  if (run.stop === 'paused') return waitInQueue(run, job, item, token, run.waits.pausedSeconds);
  // Out of time: back in the queue, visible once this environment's pace allows its next send.
  if (run.stop === 'deadline')
    return waitInQueue(run, job, item, token, pacerWaitMs / 1000, { grows: false });
  if (run.stop === 'unrecorded')
    return waitInQueue(run, job, item, token, run.waits.throttledSeconds, { grows: false });
  // Every message is a recipient to SES's rate, cc copies too.
  await run.deps.pacer?.take(1);
  // Another sender may have found sending paused, or the store failing, while this one waited its turn.
  if (run.stop === 'paused') return waitInQueue(run, job, item, token, run.waits.pausedSeconds);
  if (run.stop === 'unrecorded')
    return waitInQueue(run, job, item, token, run.waits.throttledSeconds, { grows: false });
  return 'go';
}

/**
 * Sends one claimed recipient's email, a message per reader: the cc copies not sent yet, then the
 * recipient's own, last (see `DeliveryClaims`: its message id on the claim says every copy is out).
 * Answers the recipient's outcome, or nothing when the email went back to the queue. A copy SES
 * refuses is noted on the outcome; the recipient's own email decides it.
 */
export async function sendOne(
  run: BatchRun,
  job: CompiledJob,
  entry: ToSend,
  linkSecret: string | undefined,
) {
  const { deps, log } = run;
  const { item, token, base, copiesSent } = entry;
  const recipient = item.email.recipient;
  const sqsMessageId = item.message.messageId;
  // A cancel seen by another sender of this batch is final: no need to wait a turn to learn it again.
  if (run.cancelledJobs.has(job.jobId)) return cancelledOutcome(base, item);
  const readers = readersOf(base.cc, recipient, copiesSent);
  const copyErrors: Record<string, string> = {};
  // Every copy sent so far: a chunk's recipient keeps the whole map on its item with each copy.
  const copies: Record<string, string> = { ...copiesSent };
  for (const [index, reader] of readers.entries()) {
    if ((await takeTurn(run, job, item, token)) !== 'go') return undefined;
    if (index === 0) {
      // The last look before the email leaves: the pacer may have held it for seconds, and no email
      // may start more than `CANCEL_LOOK_MAX_AGE_MS` after a cancel is recorded. Once its first
      // message is out, the email's other messages follow it.
      let cancelled: boolean;
      try {
        cancelled = await lookForCancel(run, job);
      } catch (error) {
        log('WARN', 'Could not read whether the job was cancelled; the email waits in the queue', {
          job_id: job.jobId,
          error: errorText(error),
        });
        return waitInQueue(run, job, item, token, run.waits.throttledSeconds, { grows: false });
      }
      if (cancelled) {
        run.cancelledJobs.add(job.jobId);
        return cancelledOutcome(base, item, Object.keys(copiesSent).length);
      }
    }
    // The recipient's own message is the last (its address may also be a cc address of a stored job).
    const own = index === readers.length - 1;
    let messageId: string | null;
    try {
      ({ messageId } = await deps.transport.send(messageFor(run, job, entry, reader, linkSecret)));
    } catch (error) {
      if (!own && error instanceof DeliveryError && error.kind === 'rejected') {
        copyErrors[reader] = error.message;
        continue;
      }
      return refused(run, job, entry, error, copyErrors);
    }
    if (own) {
      const decided: Decided = {
        outcome: { ...base, status: 'sent', messageId, ...withCopyErrors(copyErrors) },
        sqsMessageId,
      };
      // The outcome, with SES's message id, is written at once, in one write under the claim: no
      // later attempt sends the email again. If it cannot be written now, the batch's recording
      // tries once more (answered here), and sending stops: each further email could go twice.
      return (await recordSent(run, job, decided)) ? undefined : decided;
    }
    if (messageId) {
      copies[reader] = messageId;
      const written = await handOver(run, job, messageId, () =>
        item.chunk
          ? deps.deliveries.recordCopies(job.jobId, recipient, copies)
          : deps.deliveries.handOver(job.jobId, recipient, token, messageId, { copyTo: reader }),
      );
      if (written === 'lost') {
        // Another consumer holds the recipient now and sends what its claim says is left: not this one.
        run.result.retry.push(sqsMessageId);
        return undefined;
      }
      if (written === 'unwritten') {
        // The copy is out but its id is not on the claim: the claim is kept (a release would let the
        // next claim send this copy again at once); its lease ends before the email is tried again.
        return waitInQueue(run, job, item, token, run.waits.throttledSeconds, {
          grows: false,
          release: false,
        });
      }
    }
  }
  return undefined;
}

/**
 * Who gets a message of a recipient's email, in the order they are sent: each cc address once (not
 * the recipient, not one an earlier attempt handed over), then the recipient. Submission refuses
 * a cc address named twice or also a recipient; jobs stored before it did are sent the same way.
 */
export function readersOf(
  cc: readonly string[],
  recipient: string,
  copiesSent: Readonly<Record<string, string>>,
): string[] {
  const copies = [...new Set(cc)].filter(
    (address) => address !== recipient && copiesSent[address] === undefined,
  );
  return [...copies, recipient];
}

const withCopyErrors = (copyErrors: Record<string, string>) =>
  Object.keys(copyErrors).length > 0 ? { copyErrors } : {};

/** What a transport's refusal of a message makes of the email: failed, or back in the queue to wait. */
async function refused(
  run: BatchRun,
  job: CompiledJob,
  { item, token, base }: ToSend,
  error: unknown,
  copyErrors: Record<string, string>,
): Promise<Decided | undefined> {
  const sqsMessageId = item.message.messageId;
  if (!(error instanceof DeliveryError)) {
    // No answer: whether the email left is unknown, so the claim stays until its lease ends,
    // and the retry after it decides.
    run.log('WARN', 'The transport did not answer; the message will be retried', {
      job_id: job.jobId,
      error: errorText(error),
    });
    run.result.retry.push(sqsMessageId);
    return undefined;
  }
  switch (error.kind) {
    case 'rejected':
      return {
        outcome: {
          ...base,
          status: 'failed',
          error: error.message,
          reason: 'rejected',
          ...withCopyErrors(copyErrors),
        },
        sqsMessageId,
      } satisfies Decided;
    case 'paused':
      if (!run.stop)
        run.log('ERROR', 'Sending is paused; emails wait in the queue', { error: error.message });
      run.stop = 'paused';
      run.result.paused = true;
      return waitInQueue(run, job, item, token, run.waits.pausedSeconds);
    case 'throttled':
      // SES said it did not take the email: it waits, longer each time.
      return waitInQueue(run, job, item, token, run.waits.throttledSeconds);
    case 'unavailable':
      // A server error may come after SES took the email: the claim stays (the new message
      // finds it held until the lease ends), so only a claim without a message id lapses.
      return waitInQueue(run, job, item, token, run.waits.throttledSeconds, { release: false });
    default:
      // A kind this code does not know: the message comes back, the claim lapses with its lease.
      run.result.retry.push(sqsMessageId);
      return undefined;
  }
}
