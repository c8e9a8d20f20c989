import { backoff, mapConcurrently } from '../concurrency';
import type { Nonprofit } from '../nonprofits/nonprofit';
import type { NonprofitRepository } from '../nonprofits/repository';
import { type EmailMessage, type EmailQueue, emailMessage, MAX_DELAY_SECONDS } from '../queue/email-queue';
import type { RecipientQuota } from '../quota/recipient-quota';
import type { SuppressionList } from '../suppressions/repository';
import { type Suppression, suppressedBecause } from '../suppressions/suppression';
import { type SigningSecret, signUnsubscribeToken } from '../suppressions/unsubscribe-token';
import { compileTemplate, type TemplatePart } from '../templates/template';
import type { SendPacer } from '../transport/send-pacer';
import { DeliveryError, type EmailTransport, type RenderedEmail } from '../transport/transport';
import {
  type Claim,
  ClaimLostError,
  type DeliveryClaims,
  type DeliveryOutcome,
  type FailureReason,
  type ProgressRecorder,
} from './deliveries';
import type { JobContent } from './job';
import type { JobContentStore, JobStore } from './job-store';
import { type RenderSettings, renderEmail } from './render-email';
import type { RenderedEmailStore } from './rendered-emails';

/** A message as the event source hands it over. */
export interface ReceivedMessage {
  messageId: string;
  body: string;
  /** ApproximateReceiveCount: 1 on the first receive. */
  receiveCount: number;
  /** What SQS needs to change the message's visibility. */
  receiptHandle?: string;
}

export type Log = (
  level: 'INFO' | 'WARN' | 'ERROR',
  message: string,
  detail?: Record<string, unknown>,
) => void;

export interface ProcessEmailsDependencies {
  contents: Pick<JobContentStore, 'content'>;
  /** Asked whether a job was cancelled: once per job per batch, and again right before each email is sent. */
  jobs: Pick<JobStore, 'cancelRequested'>;
  nonprofits: Pick<NonprofitRepository, 'getMany'>;
  transport: EmailTransport;
  deliveries: ProgressRecorder & DeliveryClaims;
  /** Addresses that get no email: read for every batch, so an unsubscribe counts from the next one. */
  suppressions: Pick<SuppressionList, 'getMany'>;
  /** Gives each email its one-click unsubscribe link, signed with the deployment's secret. */
  unsubscribe?: UnsubscribeLinks | undefined;
  /** Where an email waits when the transport asks to wait, the invocation's time runs out, or another consumer holds it. */
  queue: Pick<EmailQueue, 'defer' | 'returnAfter'>;
  /** Keeps each rendered email, when the deployment stores them. */
  rendered?: Pick<RenderedEmailStore, 'put'> | undefined;
  /** Gives back to its key's recipient quota each recipient a cancel kept from being sent. */
  quota?: Pick<RecipientQuota, 'refund'> | undefined;
  /** Holds this environment's share of the transport's send rate. */
  pacer?: SendPacer | undefined;
  settings: RenderSettings;
  /** Base waits, in seconds, before a throttled or paused email is tried again (tests shorten them). */
  waits?: { throttledSeconds: number; pausedSeconds: number };
  log?: Log;
  now?: () => Date;
}

export interface UnsubscribeLinks {
  secret: SigningSecret;
  /** The public `/unsubscribe` URL the token is appended to. */
  url: string;
  mailto?: string | undefined;
}

/** What a batch did: enough for the event source's answer and for the handler's metrics. */
export interface BatchResult {
  /** Messages to receive again later (transient failures); all others are done. */
  retry: string[];
  sent: number;
  failed: Record<FailureReason, number>;
  /** Recipients recorded `suppressed`, not sent. */
  suppressed: number;
  /** Recipients recorded `cancelled`: their job was cancelled before they were sent. */
  cancelled: number;
  duplicates: number;
  /** Emails put back in the queue to wait (throttled, paused, out of time), not failed. */
  deferred: number;
  /** Whether the transport said sending is paused for the account or configuration set. */
  paused: boolean;
  /** Milliseconds from each newly recorded email's job acceptance to now. */
  latenciesMs: number[];
  /** Jobs this batch ended, with their duration from acceptance. */
  completedJobs: { jobId: string; durationSeconds: number }[];
}

const emptyResult = (): BatchResult => ({
  retry: [],
  sent: 0,
  failed: { nonprofitDeleted: 0, rejected: 0, tooLarge: 0, deadLetter: 0 },
  suppressed: 0,
  cancelled: 0,
  duplicates: 0,
  deferred: 0,
  paused: false,
  latenciesMs: [],
  completedJobs: [],
});

/** What a consumer needs of a job, compiled once per execution environment (it never changes). */
interface CompiledJob {
  jobId: string;
  content: JobContent;
  body: TemplatePart[];
  subject: TemplatePart[] | null;
}

const compiledJobs = new Map<string, CompiledJob>();
const MAX_CACHED_JOBS = 200;

async function compiledJob(
  contents: Pick<JobContentStore, 'content'>,
  jobId: string,
): Promise<CompiledJob | undefined> {
  const cached = compiledJobs.get(jobId);
  if (cached) return cached;
  const content = await contents.content(jobId);
  if (!content) return undefined;
  const compiled = {
    jobId,
    content,
    body: compileTemplate(content.template),
    subject: content.subject === null ? null : compileTemplate(content.subject),
  };
  if (compiledJobs.size >= MAX_CACHED_JOBS) compiledJobs.delete(compiledJobs.keys().next().value as string);
  compiledJobs.set(jobId, compiled);
  return compiled;
}

function parse(message: ReceivedMessage): EmailMessage | undefined {
  try {
    const parsed = emailMessage.safeParse(JSON.parse(message.body));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

type Item = { message: ReceivedMessage; email: EmailMessage };

/**
 * Groups a batch by job, with each job's compiled content. A message that can never succeed (not
 * ours, or of a job that does not exist) is logged and left out rather than retried.
 */
async function groupByJob(
  deps: Pick<ProcessEmailsDependencies, 'contents'>,
  messages: readonly ReceivedMessage[],
  log: Log,
) {
  const byJob = new Map<string, Item[]>();
  for (const message of messages) {
    const email = parse(message);
    if (!email) {
      log('ERROR', 'Dropping a message that is not an email message', { messageId: message.messageId });
      continue;
    }
    const items = byJob.get(email.job_id);
    if (items) items.push({ message, email });
    else byJob.set(email.job_id, [{ message, email }]);
  }
  const groups: { job: CompiledJob; items: Item[] }[] = [];
  for (const [jobId, items] of byJob) {
    const job = await compiledJob(deps.contents, jobId);
    if (job) groups.push({ job, items });
    else
      log('ERROR', 'Dropping messages of a job that does not exist', {
        job_id: jobId,
        messages: items.length,
      });
  }
  return groups;
}

/** An outcome decided for the recipient of one SQS message (`sqsMessageId`, which goes back to the queue if recording fails). */
type Decided = { outcome: DeliveryOutcome; sqsMessageId: string };

/**
 * Records a job's outcomes and notes what that did in the batch's result; if recording fails, the
 * messages go back to the queue: their claims stay, so the next attempt records a handed-over email
 * as sent without sending it again.
 */
async function record(
  deps: Pick<ProcessEmailsDependencies, 'deliveries' | 'log' | 'now' | 'quota'>,
  result: BatchResult,
  job: CompiledJob,
  decided: Decided[],
): Promise<void> {
  if (decided.length === 0) return;
  try {
    const recorded = await deps.deliveries.record(
      job.jobId,
      decided.map(({ outcome }) => outcome),
    );
    const now = (deps.now?.() ?? new Date()).getTime();
    const accepted = Date.parse(job.content.accepted_at);
    for (const outcome of recorded.recorded) {
      if (outcome.status === 'sent') result.sent++;
      else if (outcome.status === 'suppressed') result.suppressed++;
      else if (outcome.status === 'cancelled') result.cancelled++;
      else if (outcome.reason) result.failed[outcome.reason]++;
      if (Number.isFinite(accepted)) result.latenciesMs.push(now - accepted);
    }
    result.duplicates += recorded.duplicates;
    await refundCancelled(deps, job, recorded.recorded.filter(({ status }) => status === 'cancelled').length);
    if (recorded.completed && Number.isFinite(accepted)) {
      result.completedJobs.push({ jobId: job.jobId, durationSeconds: (now - accepted) / 1000 });
    }
  } catch (error) {
    deps.log?.('ERROR', 'Could not record outcomes; the messages will be retried', {
      job_id: job.jobId,
      error: errorText(error),
    });
    result.retry.push(...decided.map(({ sqsMessageId }) => sqsMessageId));
  }
}

/**
 * Gives the key's quota back what these cancelled recipients would have sent (each with its cc
 * copies), once: only outcomes this call recorded count. Failing that, the count stays (the safe side).
 */
async function refundCancelled(
  deps: Pick<ProcessEmailsDependencies, 'quota' | 'log'>,
  job: CompiledJob,
  cancelled: number,
): Promise<void> {
  const charged = job.content.quota;
  if (!deps.quota || !charged || cancelled === 0) return;
  try {
    await deps.quota.refund(charged.api_key_id, charged.day, cancelled * (1 + job.content.cc.length));
  } catch (error) {
    deps.log?.('WARN', 'Could not give cancelled recipients back to the quota', {
      job_id: job.jobId,
      error: errorText(error),
    });
  }
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Claims each message's recipient. Recipients already done are duplicates; those another consumer
 * holds go back to the queue (told to `onHeld`); the rest come back with their claims. A failure to claim sends the
 * job's messages back (a claim that was written stays until its lease ends).
 */
async function claimAll(
  deps: Pick<ProcessEmailsDependencies, 'deliveries' | 'log'>,
  result: BatchResult,
  job: CompiledJob,
  items: Item[],
  onHeld: (item: Item, leaseUntil: number) => Promise<void> = async () => undefined,
): Promise<{ item: Item; claim: HeldClaim }[]> {
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
}

type HeldClaim = Extract<Claim, { token: string }>;

/** What every outcome of a claimed recipient carries. */
type OutcomeBase = ReturnType<typeof outcomeBase>;
const outcomeBase = (job: CompiledJob, item: Item, claim: HeldClaim) => ({
  recipient: item.email.recipient,
  cc: job.content.cc,
  attempts: item.message.receiveCount,
  claimToken: claim.token,
});

/** An earlier attempt's email the transport took: recorded sent under its message id, never sent again. */
const handedOver = (
  base: OutcomeBase,
  claim: Extract<Claim, { state: 'handedOver' }>,
  item: Item,
): Decided => ({
  outcome: { ...base, status: 'sent', messageId: claim.messageId },
  sqsMessageId: item.message.messageId,
});

/** A recipient of a cancelled job: recorded without an email. */
const cancelledOutcome = (base: OutcomeBase, item: Item): Decided => ({
  outcome: { ...base, status: 'cancelled', error: 'Not sent: the job was cancelled first.' },
  sqsMessageId: item.message.messageId,
});

/** Emails sent at once by one environment (each waits its turn at the pacer). */
const SEND_CONCURRENCY = 4;
/**
 * An email is started only with this much of the invocation left, so that its hand-over and the
 * batch's recording finish before the timeout. What is left waits in the queue for the next invocation.
 */
const SEND_MARGIN_MS = 5_000;
/** Waits before trying a throttled or paused email again; each further wait doubles, up to SQS's 15 minutes. */
const DEFAULT_WAITS = { throttledSeconds: 15, pausedSeconds: 60 };

/**
 * The longest wait of an email put back because DynamoDB failed. The consumers' concurrency, not
 * the wait, bounds what they ask of a failing table; a short cap resumes a job within a minute of
 * the table's return, where SQS's 15 minutes would hold it long after.
 */
const STORE_FAILURE_MAX_DELAY_SECONDS = 60;

/** Doubles with each time the email was put back, up to `max`, jittered so waiting emails spread out. */
const growingDelay = (base: number, item: Item, max: number) =>
  Math.min(max, base * 2 ** (item.email.deferrals ?? 0)) * (0.8 + Math.random() * 0.2);

/** What one invocation shares while it works through its batch. */
interface BatchRun {
  deps: ProcessEmailsDependencies;
  log: Log;
  result: BatchResult;
  remainingMs: () => number;
  /** Time kept for recording: no email is started with less left. */
  marginMs: number;
  waits: NonNullable<ProcessEmailsDependencies['waits']>;
  /**
   * Set when sending must stop for this invocation: the transport is paused, time is short, or a
   * message id could not be written (DynamoDB is failing: each further email sent would be one
   * whose claim lapses without its id, and so one sent twice).
   */
  stop?: 'paused' | 'deadline' | 'unrecorded';
  /** Jobs a sender found cancelled: their other emails in this batch skip the pacer's wait. */
  cancelledJobs: Set<string>;
}

/**
 * Renders, sends and records each email of a batch, one recording transaction per job. Each
 * recipient is claimed before it is sent (see `DeliveryClaims`), so a duplicate message, a retry
 * after a failed recording, a consumer that throws or times out, never sends an email twice. A
 * recipient whose nonprofit was deleted since the job was accepted, or whose email renders too
 * large, fails at once; a throttled, unavailable or paused transport makes the email wait in the
 * queue, uncounted.
 */
export async function processEmailBatch(
  deps: ProcessEmailsDependencies,
  messages: readonly ReceivedMessage[],
  remainingMs: () => number = () => Number.POSITIVE_INFINITY,
): Promise<BatchResult> {
  const log = deps.log ?? (() => undefined);
  const result = emptyResult();
  const groups = await groupByJob(deps, messages, log);
  const recipients = groups.flatMap(({ items }) => items.map(({ email }) => email.recipient));
  // Eventually consistent: a nonprofit renamed a second ago may render with its former name, at half the read cost.
  const nonprofits = await deps.nonprofits.getMany(recipients, { consistent: false });
  const run: BatchRun = {
    deps,
    log,
    result,
    remainingMs,
    // A short timeout keeps a quarter of itself for the recording, never less.
    marginMs: Math.min(SEND_MARGIN_MS, remainingMs() / 4),
    waits: deps.waits ?? DEFAULT_WAITS,
    cancelledJobs: new Set(),
  };
  for (const { job, items } of groups) await processJob(run, job, items, nonprofits);
  return result;
}

type ToSend = { item: Item; token: string; base: OutcomeBase; email: RenderedEmail };

async function processJob(
  run: BatchRun,
  job: CompiledJob,
  items: Item[],
  nonprofits: Map<string, Nonprofit>,
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
  // A suppressed cc address gets no copy; the recipient still gets the email.
  const cc = job.content.cc.filter((address) => !suppressed.has(address));
  for (const { item, claim } of claimed) {
    const base = { ...outcomeBase(job, item, claim), cc };
    const sqsMessageId = item.message.messageId;
    if (claim.state === 'handedOver') {
      decided.push(handedOver({ ...base, cc: job.content.cc }, claim, item));
      continue;
    }
    if (cancelled) {
      decided.push(cancelledOutcome(base, item));
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
    const nonprofit = nonprofits.get(item.email.recipient);
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
    toSend.push({
      item,
      token: claim.token,
      base,
      email: {
        to: item.email.recipient,
        cc,
        jobId: job.jobId,
        ...rendered,
        // One message goes to the nonprofit and its cc copies alike: a link in it would let a copied
        // reader unsubscribe the nonprofit, so only emails without copies carry one.
        ...(linkSecret === undefined || cc.length > 0
          ? {}
          : { unsubscribe: unsubscribeLink(deps, linkSecret, job, item) }),
      },
    });
  }

  let sendable = toSend;
  if (deps.rendered && toSend.length > 0) {
    try {
      await deps.rendered.put(
        job.jobId,
        toSend.map(({ email }) => ({ recipient: email.to, subject: email.subject, body: email.body })),
      );
    } catch (error) {
      log('ERROR', 'Could not store rendered emails; the emails wait in the queue and are tried again', {
        job_id: job.jobId,
        error: errorText(error),
      });
      for (const { item, token } of toSend)
        await waitInQueue(run, job, item, token, run.waits.throttledSeconds, {
          maxSeconds: STORE_FAILURE_MAX_DELAY_SECONDS,
        });
      sendable = [];
    }
  }
  await mapConcurrently(sendable, SEND_CONCURRENCY, async (entry) => {
    const outcome = await sendOne(run, job, entry);
    if (outcome) decided.push(outcome);
  });
  await record(deps, run.result, job, decided);
}

/**
 * What sending needs beyond the claims: the suppressed addresses among the claimed recipients (an
 * earlier attempt's handed-over email is sent already) and the job's cc, and the secret that signs
 * unsubscribe links. If either cannot be read, nothing is sent: the emails wait in the queue and
 * `undefined` says so.
 */
async function prepareSending(
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
    // Read after the claims were written: a cancel recorded before these claims is seen here.
    const [suppressed, linkSecret, cancelled] = await Promise.all([
      run.deps.suppressions.getMany([...toCheck, ...job.content.cc]),
      run.deps.unsubscribe?.secret.get(),
      run.deps.jobs.cancelRequested(job.jobId),
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

/** The recipient's own link: it unsubscribes the nonprofit the email is addressed to. */
function unsubscribeLink(
  deps: ProcessEmailsDependencies,
  secret: string,
  job: CompiledJob,
  item: Item,
): RenderedEmail['unsubscribe'] {
  const links = deps.unsubscribe as UnsubscribeLinks;
  const token = signUnsubscribeToken(secret, { email: item.email.recipient, jobId: job.jobId });
  return { url: `${links.url}?token=${token}`, mailto: links.mailto };
}

/** Sends one claimed email; answers its outcome, or nothing when it went back to the queue. */
async function sendOne(run: BatchRun, job: CompiledJob, { item, token, base, email }: ToSend) {
  const { deps, log } = run;
  // A cancel seen by another sender of this batch is final: no need to wait a turn to learn it again.
  if (run.cancelledJobs.has(job.jobId)) return cancelledOutcome(base, item);
  const pacerWaitMs = deps.pacer?.waitMs() ?? 0;
  if (!run.stop && run.remainingMs() - pacerWaitMs < run.marginMs) run.stop = 'deadline';
  if (run.stop === 'paused') return waitInQueue(run, job, item, token, run.waits.pausedSeconds);
  // Out of time: back in the queue, visible once this environment's pace allows its next send.
  if (run.stop === 'deadline')
    return waitInQueue(run, job, item, token, pacerWaitMs / 1000, { grows: false });
  if (run.stop === 'unrecorded')
    return waitInQueue(run, job, item, token, run.waits.throttledSeconds, { grows: false });
  await deps.pacer?.take(1 + email.cc.length);
  // Another sender may have found sending paused, or the store failing, while this one waited its turn.
  if (run.stop === 'paused') return waitInQueue(run, job, item, token, run.waits.pausedSeconds);
  if (run.stop === 'unrecorded')
    return waitInQueue(run, job, item, token, run.waits.throttledSeconds, { grows: false });
  const sqsMessageId = item.message.messageId;
  // The last look before the email leaves (a strongly consistent read of a small item): the pacer
  // may have held it for seconds, and no email may start once a cancel is recorded.
  let cancelled: boolean;
  try {
    cancelled = await deps.jobs.cancelRequested(job.jobId);
  } catch (error) {
    log('WARN', 'Could not read whether the job was cancelled; the email waits in the queue', {
      job_id: job.jobId,
      error: errorText(error),
    });
    return waitInQueue(run, job, item, token, run.waits.throttledSeconds, { grows: false });
  }
  if (cancelled) {
    run.cancelledJobs.add(job.jobId);
    return cancelledOutcome(base, item);
  }
  try {
    const { messageId } = await deps.transport.send(email);
    if (messageId) await handOver(run, job, email.to, token, messageId);
    return { outcome: { ...base, status: 'sent', messageId }, sqsMessageId } satisfies Decided;
  } catch (error) {
    if (!(error instanceof DeliveryError)) {
      // No answer: whether the email left is unknown, so the claim stays until its lease ends,
      // and the retry after it decides.
      log('WARN', 'The transport did not answer; the message will be retried', {
        job_id: job.jobId,
        error: errorText(error),
      });
      run.result.retry.push(sqsMessageId);
      return undefined;
    }
    switch (error.kind) {
      case 'rejected':
        return {
          outcome: { ...base, status: 'failed', error: error.message, reason: 'rejected' },
          sqsMessageId,
        } satisfies Decided;
      case 'paused':
        if (!run.stop) log('ERROR', 'Sending is paused; emails wait in the queue', { error: error.message });
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
}

/** Attempts at writing the message id on a claim before giving up on it. */
const HAND_OVER_ATTEMPTS = 4;

/**
 * Writes SES's message id on the claim, retrying: if it is never written and the recording fails
 * too, the claim lapses without it and the email is sent again once its lease ends.
 */
async function handOver(
  run: BatchRun,
  job: CompiledJob,
  recipient: string,
  token: string,
  messageId: string,
) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await run.deps.deliveries.handOver(job.jobId, recipient, token, messageId);
    } catch (error) {
      // The claim is no longer ours (its lease lapsed and another consumer took it): no retry helps,
      // and the store is working, so sending goes on.
      if (error instanceof ClaimLostError) {
        run.log('WARN', 'The claim was taken over before the message id was written', {
          job_id: job.jobId,
          ses_message_id: messageId,
        });
        return;
      }
      if (attempt + 1 >= HAND_OVER_ATTEMPTS) {
        // The recording below writes the message id too; only if it also fails can the email go
        // twice. No further email of this invocation is sent: it could only widen that window.
        run.log('ERROR', 'Could not write the message id on the claim; sending stops for this batch', {
          job_id: job.jobId,
          ses_message_id: messageId,
          error: errorText(error),
        });
        if (!run.stop) run.stop = 'unrecorded';
        return;
      }
      await backoff(attempt, 50);
    }
  }
}

/**
 * Gives the claim back (unless `release` is false) and puts the email back in the queue after
 * about `baseSeconds`; failing that, the received message is retried. When `grows` (the transport
 * asked to wait), the wait doubles with each time the email was put back; running out of time is
 * no reason to.
 */
async function waitInQueue(
  run: BatchRun,
  job: CompiledJob,
  item: Item,
  token: string,
  baseSeconds: number,
  { grows = true, release = true, maxSeconds = MAX_DELAY_SECONDS } = {},
): Promise<undefined> {
  const { deps, log } = run;
  if (release) {
    try {
      await deps.deliveries.release(job.jobId, item.email.recipient, token);
    } catch (error) {
      log('WARN', 'Could not release a claim; it lapses with its lease', {
        job_id: job.jobId,
        error: errorText(error),
      });
    }
  }
  try {
    const deferrals = item.email.deferrals ?? 0;
    await deps.queue.defer(
      { ...item.email, ...(grows || deferrals > 0 ? { deferrals: deferrals + (grows ? 1 : 0) } : {}) },
      grows ? growingDelay(baseSeconds, item, maxSeconds) : Math.ceil(baseSeconds),
    );
    run.result.deferred++;
  } catch (error) {
    log('WARN', 'Could not put an email back to wait; the message will be retried', {
      error: errorText(error),
    });
    run.result.retry.push(item.message.messageId);
  }
  return undefined;
}

/**
 * Held by another consumer: it is sending now, or died (a crash, a timeout) and its claim lapses
 * with the lease. The message is seen again just after that, not after the visibility timeout.
 */
async function returnAfterLease({ deps, log }: BatchRun, { message }: Item, leaseUntil: number) {
  if (!message.receiptHandle) return;
  const seconds = (leaseUntil - (deps.now?.() ?? new Date()).getTime()) / 1000 + 1;
  try {
    await deps.queue.returnAfter(message.receiptHandle, seconds);
  } catch (error) {
    log('WARN', 'Could not time the return of a held message', { error: errorText(error) });
  }
}

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
  for (const { job, items } of await groupByJob(deps, messages, deps.log ?? (() => undefined))) {
    const claimed = await claimAll(deps, result, job, items);
    const cancelled =
      claimed.some(({ claim }) => claim.state === 'claimed') && (await wasCancelled(deps, job));
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
  return result;
}

/** Whether the job was cancelled; unknown (the read failing) counts as not: the email then failed. */
async function wasCancelled(deps: Pick<ProcessEmailsDependencies, 'jobs' | 'log'>, job: CompiledJob) {
  try {
    return await deps.jobs.cancelRequested(job.jobId);
  } catch (error) {
    deps.log?.('WARN', 'Could not read whether the job was cancelled; its dead letters are recorded failed', {
      job_id: job.jobId,
      error: errorText(error),
    });
    return false;
  }
}
