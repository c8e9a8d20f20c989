import { carriedValues, type EmailMessage, MAX_DELAY_SECONDS } from '../../queue/email-queue';
import { type BatchRun, errorText } from './batch';
import type { CompiledJob, Item } from './received-batch';

// How an email waits: put back in the queue, with a delay that grows while the transport asks to
// wait. The send rate itself is the pacer's (transport/send-pacer.ts).

/** Waits before trying a throttled or paused email again; each further wait doubles, up to SQS's 15 minutes. */
export const DEFAULT_WAITS = { throttledSeconds: 15, pausedSeconds: 60 };

/**
 * The longest wait of an email put back because DynamoDB failed. The consumers' concurrency, not
 * the wait, bounds what they ask of a failing table; a short cap resumes a job within a minute of
 * the table's return, where SQS's 15 minutes would hold it long after.
 */
export const STORE_FAILURE_MAX_DELAY_SECONDS = 60;

/** Doubles with each time the email was put back, up to `max`, jittered so waiting emails spread out. */
const growingDelay = (base: number, item: Item, max: number) =>
  Math.min(max, base * 2 ** (item.email.deferrals ?? 0)) * (0.8 + Math.random() * 0.2);

/**
 * Gives the claim back (unless `release` is false) and puts the email back in the queue after
 * about `baseSeconds`; failing that, the received message is retried. When `grows` (the transport
 * asked to wait), the wait doubles with each time the email was put back; running out of time is
 * no reason to.
 */
export async function waitInQueue(
  run: BatchRun,
  job: CompiledJob,
  item: Item,
  token: string,
  baseSeconds: number,
  { grows = true, release = true, maxSeconds = MAX_DELAY_SECONDS } = {},
): Promise<undefined> {
  const { deps } = run;
  const deferrals = item.email.deferrals ?? 0;
  const delaySeconds = grows ? growingDelay(baseSeconds, item, maxSeconds) : Math.ceil(baseSeconds);
  const nextDeferrals = grows || deferrals > 0 ? deferrals + (grows ? 1 : 0) : undefined;
  if (item.chunk) {
    // A chunk's recipients wait together: noted now, sent back once the batch is over.
    const { messageId } = item.message;
    const wait = run.waiting.get(messageId) ?? {
      job: job.jobId,
      chunk: item.chunk.chunk,
      token,
      recipients: [],
      nonprofits: [],
      delaySeconds: 0,
      deferrals: 0,
      release: true,
    };
    wait.recipients.push(item.email.recipient);
    wait.nonprofits.push(item.queued);
    wait.delaySeconds = Math.max(wait.delaySeconds, delaySeconds);
    wait.deferrals = Math.max(wait.deferrals, nextDeferrals ?? 0);
    wait.release &&= release;
    run.waiting.set(messageId, wait);
    return undefined;
  }
  await putBack(run, {
    jobId: job.jobId,
    messageId: item.message.messageId,
    release: release ? () => deps.deliveries.release(job.jobId, item.email.recipient, token) : undefined,
    message: { ...item.email, ...(nextDeferrals === undefined ? {} : { deferrals: nextDeferrals }) },
    delaySeconds,
    recipients: 1,
  });
  return undefined;
}

/**
 * Sends each chunk's waiting recipients back to the queue as one message of the chunk, after the
 * longest wait any of them asked for, and gives the chunk's claim back (unless one of them may have
 * been taken by the transport: then it lapses with its lease). A chunk whose message goes back whole
 * (another of its recipients asked for a retry) needs nothing more: its waiting recipients come back in it.
 */
export async function returnWaitingChunks(run: BatchRun): Promise<void> {
  const { deps, result } = run;
  const returning = new Set(result.retry);
  await Promise.all(
    [...run.waiting].map(async ([messageId, wait]) => {
      if (returning.has(messageId)) return;
      const carried = carriedValues(wait.nonprofits);
      await putBack(run, {
        jobId: wait.job,
        messageId,
        release: wait.release
          ? () => deps.deliveries.releaseChunk(wait.job, wait.chunk, wait.token)
          : undefined,
        message: {
          job_id: wait.job,
          chunk: wait.chunk,
          recipients: wait.recipients,
          ...(carried ? { nonprofits: carried } : {}),
          ...(wait.deferrals > 0 ? { deferrals: wait.deferrals } : {}),
        },
        delaySeconds: wait.delaySeconds,
        recipients: wait.recipients.length,
      });
    }),
  );
  run.waiting.clear();
}

/**
 * Gives the claim back (when `release` is given: the transport certainly did not take the emails)
 * and puts the message back in the queue, delayed; failing that, the received message is retried.
 * A claim that cannot be given back lapses with its lease.
 */
async function putBack(
  { deps, log, result }: BatchRun,
  put: {
    jobId: string;
    messageId: string;
    release: (() => Promise<void>) | undefined;
    message: EmailMessage;
    delaySeconds: number;
    recipients: number;
  },
): Promise<void> {
  if (put.release) {
    try {
      await put.release();
    } catch (error) {
      log('WARN', 'Could not release a claim; it lapses with its lease', {
        job_id: put.jobId,
        error: errorText(error),
      });
    }
  }
  try {
    await deps.queue.defer(put.message, put.delaySeconds);
    result.deferred += put.recipients;
  } catch (error) {
    log('WARN', 'Could not put an email back to wait; the message will be retried', {
      job_id: put.jobId,
      error: errorText(error),
    });
    result.retry.push(put.messageId);
  }
}
