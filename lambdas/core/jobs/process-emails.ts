import type { Nonprofit } from '../nonprofits/nonprofit';
import type { NonprofitRepository } from '../nonprofits/repository';
import { type EmailMessage, emailMessage } from '../queue/email-queue';
import { compileTemplate, renderTemplate, type TemplatePart } from '../templates/template';
import { type EmailTransport, PermanentDeliveryError } from '../transport/transport';
import type { DeliveryOutcome, ProgressRecorder } from './deliveries';
import type { JobContent } from './job';
import type { JobContentStore } from './job-store';

/** A message as the event source hands it over. */
export interface ReceivedMessage {
  messageId: string;
  body: string;
  /** ApproximateReceiveCount: 1 on the first receive. */
  receiveCount: number;
}

export type Log = (
  level: 'INFO' | 'WARN' | 'ERROR',
  message: string,
  detail?: Record<string, unknown>,
) => void;

export interface ProcessEmailsDependencies {
  contents: Pick<JobContentStore, 'content'>;
  nonprofits: Pick<NonprofitRepository, 'getMany'>;
  transport: EmailTransport;
  progress: ProgressRecorder;
  log?: Log;
  now?: () => Date;
}

/** Why a recipient failed, in classes few enough to count. */
export type FailureReason = 'nonprofitDeleted' | 'rejected' | 'deadLetter';

/** What a batch did: enough for the event source's answer and for the handler's metrics. */
export interface BatchResult {
  /** Messages to receive again later (transient failures); all others are done. */
  retry: string[];
  sent: number;
  failed: Record<FailureReason, number>;
  duplicates: number;
  /** Milliseconds from each newly recorded email's job acceptance to now. */
  latenciesMs: number[];
  /** Jobs this batch ended, with their duration from acceptance. */
  completedJobs: { jobId: string; durationSeconds: number }[];
}

const emptyResult = (): BatchResult => ({
  retry: [],
  sent: 0,
  failed: { nonprofitDeleted: 0, rejected: 0, deadLetter: 0 },
  duplicates: 0,
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

/**
 * Records a job's outcomes and notes what that did in the batch's result; if recording fails, the
 * messages go back to the queue (their outcomes will be recomputed and, if already recorded, ignored).
 */
async function record(
  deps: Pick<ProcessEmailsDependencies, 'progress' | 'log' | 'now'>,
  result: BatchResult,
  job: CompiledJob,
  outcomes: { outcome: DeliveryOutcome; reason?: FailureReason; messageId: string }[],
): Promise<void> {
  try {
    const recorded = await deps.progress.record(
      job.jobId,
      outcomes.map(({ outcome }) => outcome),
    );
    const now = (deps.now?.() ?? new Date()).getTime();
    const accepted = Date.parse(job.content.accepted_at);
    const reasons = new Map(outcomes.map(({ outcome, reason }) => [outcome.recipient, reason]));
    for (const outcome of recorded.recorded) {
      const reason = reasons.get(outcome.recipient);
      if (outcome.status === 'sent') result.sent++;
      else if (reason) result.failed[reason]++;
      if (Number.isFinite(accepted)) result.latenciesMs.push(now - accepted);
    }
    result.duplicates += recorded.duplicates;
    if (recorded.completed && Number.isFinite(accepted)) {
      result.completedJobs.push({ jobId: job.jobId, durationSeconds: (now - accepted) / 1000 });
    }
  } catch (error) {
    deps.log?.('ERROR', 'Could not record outcomes; the messages will be retried', {
      job_id: job.jobId,
      error: error instanceof Error ? error.message : String(error),
    });
    result.retry.push(...outcomes.map(({ messageId }) => messageId));
  }
}

/**
 * Renders and hands over each email of a batch, then records the outcomes, one transaction per job.
 * A recipient whose nonprofit was deleted since the job was accepted fails at once; a transport's
 * transient error, or a failure to record, sends the message back to the queue.
 */
export async function processEmailBatch(
  deps: ProcessEmailsDependencies,
  messages: readonly ReceivedMessage[],
): Promise<BatchResult> {
  const log = deps.log ?? (() => undefined);
  const result = emptyResult();
  const groups = await groupByJob(deps, messages, log);
  const recipients = groups.flatMap(({ items }) => items.map(({ email }) => email.recipient));
  // Eventually consistent: a nonprofit renamed a second ago may render with its former name, at half the read cost.
  const nonprofits = await deps.nonprofits.getMany(recipients, { consistent: false });

  for (const { job, items } of groups) {
    const outcomes: { outcome: DeliveryOutcome; reason?: FailureReason; messageId: string }[] = [];
    for (const { message, email } of items) {
      const delivered = await deliver(
        deps.transport,
        job,
        email.recipient,
        nonprofits.get(email.recipient),
        message,
      );
      if (delivered === 'retry') result.retry.push(message.messageId);
      else outcomes.push({ ...delivered, messageId: message.messageId });
    }
    await record(deps, result, job, outcomes);
  }
  return result;
}

async function deliver(
  transport: EmailTransport,
  { jobId, content, body, subject }: CompiledJob,
  recipient: string,
  nonprofit: Nonprofit | undefined,
  message: ReceivedMessage,
): Promise<{ outcome: DeliveryOutcome; reason?: FailureReason } | 'retry'> {
  const base = { recipient, cc: content.cc, attempts: message.receiveCount };
  if (!nonprofit) {
    const error = 'The nonprofit was deleted after the job was accepted.';
    return {
      outcome: { ...base, status: 'failed', subject: null, body: null, error },
      reason: 'nonprofitDeleted',
    };
  }
  const values = { name: nonprofit.name, address: nonprofit.address, email: nonprofit.email };
  const rendered = {
    to: recipient,
    cc: content.cc,
    subject: subject ? renderTemplate(subject, values) : null,
    body: renderTemplate(body, values),
    jobId,
  };
  try {
    await transport.send(rendered);
    return { outcome: { ...base, status: 'sent', subject: rendered.subject, body: rendered.body } };
  } catch (error) {
    if (error instanceof PermanentDeliveryError) {
      const outcome: DeliveryOutcome = {
        ...base,
        status: 'failed',
        subject: rendered.subject,
        body: rendered.body,
        error: error.message,
      };
      return { outcome, reason: 'rejected' };
    }
    return 'retry';
  }
}

/** Records messages that exhausted their receives as failed, so their jobs still end. */
export async function recordDeadLetters(
  deps: Pick<ProcessEmailsDependencies, 'contents' | 'progress' | 'log' | 'now'>,
  messages: readonly ReceivedMessage[],
): Promise<BatchResult> {
  const result = emptyResult();
  for (const { job, items } of await groupByJob(deps, messages, deps.log ?? (() => undefined))) {
    const outcomes = items.map(({ email, message }) => ({
      outcome: {
        recipient: email.recipient,
        status: 'failed' as const,
        subject: null,
        body: null,
        cc: job.content.cc,
        attempts: message.receiveCount,
        error: 'Not delivered: every attempt failed and the message reached the dead-letter queue.',
      },
      reason: 'deadLetter' as const,
      messageId: message.messageId,
    }));
    await record(deps, result, job, outcomes);
  }
  return result;
}
