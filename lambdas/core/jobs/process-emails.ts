import type { Nonprofit } from '../nonprofits/nonprofit';
import type { NonprofitRepository } from '../nonprofits/repository';
import { type EmailMessage, emailMessage } from '../queue/email-queue';
import { compileTemplate, renderTemplate, type TemplatePart } from '../templates/template';
import { type EmailTransport, PermanentDeliveryError } from '../transport/transport';
import type { DeliveryOutcome, ProgressRecorder, RecordResult } from './deliveries';
import type { JobContent } from './job';
import type { JobStore } from './job-store';

/** A message as the event source hands it over. */
export interface ReceivedMessage {
  messageId: string;
  body: string;
  /** ApproximateReceiveCount: 1 on the first receive. */
  receiveCount: number;
}

export interface ProcessEmailsDependencies {
  jobs: Pick<JobStore, 'content'>;
  nonprofits: Pick<NonprofitRepository, 'getMany'>;
  transport: EmailTransport;
  progress: ProgressRecorder;
  log?: (level: 'INFO' | 'WARN' | 'ERROR', message: string, detail?: Record<string, unknown>) => void;
}

export interface BatchResult {
  /** Messages to receive again later (transient failures); all others are done. */
  retry: string[];
  sent: number;
  failed: number;
  duplicates: number;
}

/** What a consumer needs of a job, compiled once per execution environment (it never changes). */
interface CompiledJob {
  jobId: string;
  content: JobContent;
  body: TemplatePart[];
  subject: TemplatePart[] | null;
}

const compiledJobs = new Map<string, CompiledJob>();
const MAX_CACHED_JOBS = 200;

async function compiledJob(jobs: Pick<JobStore, 'content'>, jobId: string): Promise<CompiledJob | undefined> {
  const cached = compiledJobs.get(jobId);
  if (cached) return cached;
  const content = await jobs.content(jobId);
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

type Log = NonNullable<ProcessEmailsDependencies['log']>;

/** Groups a batch by job; a message that is not one of ours is logged and left out (it can never succeed). */
function groupByJob(messages: readonly ReceivedMessage[], log: Log) {
  const byJob = new Map<string, { message: ReceivedMessage; email: EmailMessage }[]>();
  for (const message of messages) {
    const email = parse(message);
    if (!email) {
      log('ERROR', 'Dropping a message that is not an email message', { messageId: message.messageId });
      continue;
    }
    byJob.set(email.job_id, [...(byJob.get(email.job_id) ?? []), { message, email }]);
  }
  return byJob;
}

function addRecorded(result: BatchResult, recorded: RecordResult): void {
  result.sent += recorded.sent;
  result.failed += recorded.failed;
  result.duplicates += recorded.duplicates;
}

/**
 * Renders and hands over each email of a batch, then records the outcomes, one transaction per job.
 * A recipient whose nonprofit was deleted since the job was accepted fails at once; a transport's
 * transient error, or a failure to record, sends the message back to the queue. A message that can
 * never be processed (not ours, or its job is gone) is logged and dropped rather than retried.
 */
export async function processEmailBatch(
  deps: ProcessEmailsDependencies,
  messages: readonly ReceivedMessage[],
): Promise<BatchResult> {
  const log = deps.log ?? (() => undefined);
  const result: BatchResult = { retry: [], sent: 0, failed: 0, duplicates: 0 };
  const byJob = groupByJob(messages, log);

  const recipients = [...byJob.values()].flat().map(({ email }) => email.recipient);
  // Eventually consistent: a nonprofit renamed a second ago may render with its former name, at half the read cost.
  const nonprofits = await deps.nonprofits.getMany(recipients, { consistent: false });

  for (const [jobId, items] of byJob) {
    const compiled = await compiledJob(deps.jobs, jobId);
    if (!compiled) {
      log('ERROR', 'Dropping messages of a job that does not exist', {
        job_id: jobId,
        messages: items.length,
      });
      continue;
    }
    const outcomes: DeliveryOutcome[] = [];
    const recordedMessages: string[] = [];
    for (const { message, email } of items) {
      const outcome = await deliver(
        deps.transport,
        compiled,
        email.recipient,
        nonprofits.get(email.recipient),
        message,
      );
      if (outcome === 'retry') result.retry.push(message.messageId);
      else {
        outcomes.push(outcome);
        recordedMessages.push(message.messageId);
      }
    }
    try {
      addRecorded(result, await deps.progress.record(jobId, outcomes));
    } catch (error) {
      log('ERROR', 'Could not record outcomes; the messages will be retried', {
        job_id: jobId,
        error: error instanceof Error ? error.message : String(error),
      });
      result.retry.push(...recordedMessages);
    }
  }
  return result;
}

async function deliver(
  transport: EmailTransport,
  { jobId, content, body, subject }: CompiledJob,
  recipient: string,
  nonprofit: Nonprofit | undefined,
  message: ReceivedMessage,
): Promise<DeliveryOutcome | 'retry'> {
  const base = { recipient, cc: content.cc, attempts: message.receiveCount };
  if (!nonprofit) {
    return {
      ...base,
      status: 'failed',
      subject: null,
      body: null,
      error: 'The nonprofit was deleted after the job was accepted.',
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
    return { ...base, status: 'sent', subject: rendered.subject, body: rendered.body };
  } catch (error) {
    if (error instanceof PermanentDeliveryError) {
      return {
        ...base,
        status: 'failed',
        subject: rendered.subject,
        body: rendered.body,
        error: error.message,
      };
    }
    return 'retry';
  }
}

/** Records messages that exhausted their receives as failed, so their jobs still end. */
export async function recordDeadLetters(
  deps: Pick<ProcessEmailsDependencies, 'jobs' | 'progress' | 'log'>,
  messages: readonly ReceivedMessage[],
): Promise<BatchResult> {
  const log = deps.log ?? (() => undefined);
  const result: BatchResult = { retry: [], sent: 0, failed: 0, duplicates: 0 };
  const byJob = groupByJob(messages, log);
  for (const [jobId, items] of byJob) {
    const compiled = await compiledJob(deps.jobs, jobId);
    if (!compiled) {
      log('ERROR', 'Dropping dead letters of a job that does not exist', { job_id: jobId });
      continue;
    }
    const outcomes: DeliveryOutcome[] = items.map(({ email, message }) => ({
      recipient: email.recipient,
      status: 'failed',
      subject: null,
      body: null,
      cc: compiled.content.cc,
      attempts: message.receiveCount,
      error: 'Not delivered: every attempt failed and the message reached the dead-letter queue.',
    }));
    try {
      addRecorded(result, await deps.progress.record(jobId, outcomes));
    } catch (error) {
      log('ERROR', 'Could not record dead letters; they will be retried', {
        job_id: jobId,
        error: String(error),
      });
      result.retry.push(...items.map(({ message }) => message.messageId));
    }
  }
  return result;
}
