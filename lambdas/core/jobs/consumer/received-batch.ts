import {
  type ChunkMessage,
  type EmailMessage,
  emailMessage,
  type QueuedNonprofit,
  type RecipientMessage,
} from '../../queue/email-queue';
import { compileTemplate, type TemplatePart } from '../../templates/template';
import type { JobContent } from '../job';
import type { JobContentStore, SendingLook } from '../job-store';
import {
  type BatchResult,
  errorText,
  type Log,
  type ProcessEmailsDependencies,
  type ReceivedMessage,
} from './batch';

/** What a consumer needs of a job, compiled once per execution environment and run of the job. */
export interface CompiledJob {
  jobId: string;
  content: JobContent;
  body: TemplatePart[];
  html: TemplatePart[] | null;
  subject: TemplatePart[] | null;
}

/**
 * Compiled jobs, with the run they were read in: a job's content never changes within a run, but an
 * erasure may rewrite it (the address in its cc and recipient lists becomes the key) before a
 * retry starts another run, and a copy kept from before must not send to the address again.
 */
const compiledJobs = new Map<string, { run: number; job: CompiledJob }>();
const MAX_CACHED_JOBS = 200;

async function compiledJob(
  contents: Pick<JobContentStore, 'content'>,
  jobId: string,
  run: number,
): Promise<CompiledJob | undefined> {
  const cached = compiledJobs.get(jobId);
  if (cached?.run === run) return cached.job;
  const content = await contents.content(jobId);
  if (!content) return undefined;
  const compiled = {
    jobId,
    content,
    body: compileTemplate(content.template),
    html: content.html ? compileTemplate(content.html) : null,
    subject: content.subject === null ? null : compileTemplate(content.subject),
  };
  compiledJobs.delete(jobId);
  if (compiledJobs.size >= MAX_CACHED_JOBS) compiledJobs.delete(compiledJobs.keys().next().value as string);
  compiledJobs.set(jobId, { run, job: compiled });
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

/**
 * One recipient of a received message. `email` is the recipient's part of it; `chunk`, when the
 * message carried a chunk of the job (see `ChunkClaims`), the whole of it: its items share the
 * message, the chunk's claim, and a fate when they must wait. `queued`: the nonprofit's values the
 * chunk carried, when it did (otherwise the registry is read).
 */
export type Item = {
  message: ReceivedMessage;
  email: RecipientMessage;
  chunk?: ChunkMessage;
  queued?: QueuedNonprofit;
};

/** A message's recipients, an item each. */
function itemsOf(message: ReceivedMessage, email: EmailMessage): Item[] {
  if ('recipient' in email) return [{ message, email }];
  return email.recipients.map((recipient, index) => {
    const queued = email.nonprofits?.[index];
    return {
      message,
      email: {
        job_id: email.job_id,
        recipient,
        ...(email.deferrals === undefined ? {} : { deferrals: email.deferrals }),
      },
      chunk: email,
      ...(queued ? { queued } : {}),
    };
  });
}

/** A job's items in a batch, its compiled content, and the look at the job taken just before they are claimed. */
export interface JobGroup {
  job: CompiledJob;
  items: Item[];
  look: SendingLook;
  /** When the look was asked (ms since the epoch). */
  lookedAt: number;
}

/** Groups a batch's messages by job; a message that is not an email message is logged and left out. */
export function groupByJob(messages: readonly ReceivedMessage[], log: Log): Map<string, Item[]> {
  const byJob = new Map<string, Item[]>();
  for (const message of messages) {
    const email = parse(message);
    if (!email) {
      log('ERROR', 'Dropping a message that is not an email message', { messageId: message.messageId });
      continue;
    }
    const items = byJob.get(email.job_id) ?? [];
    items.push(...itemsOf(message, email));
    byJob.set(email.job_id, items);
  }
  return byJob;
}

/**
 * A job's items, ready to be claimed: after a look at the job (see `SendingLook`), taken right
 * before the claims (a batch's earlier jobs may have taken the consumer's whole run), and with the
 * job's content compiled for its run. Messages of a job that ended are duplicates, dropped unclaimed;
 * of a job that does not exist, logged and dropped; when the look fails they are received again
 * later. `undefined`: nothing to claim.
 */
export async function lookedAtJob(
  deps: Pick<ProcessEmailsDependencies, 'contents' | 'jobs' | 'now'>,
  jobId: string,
  items: Item[],
  result: BatchResult,
  log: Log,
): Promise<JobGroup | undefined> {
  const lookedAt = (deps.now?.() ?? new Date()).getTime();
  let look: SendingLook;
  try {
    look = await deps.jobs.sendingLook(jobId);
  } catch (error) {
    log('ERROR', 'Could not read the job; its messages will be retried', {
      job_id: jobId,
      error: errorText(error),
    });
    result.retry.push(...new Set(items.map(({ message }) => message.messageId)));
    return undefined;
  }
  if (look.ended) {
    log('INFO', 'Dropping messages of a job that has ended: every recipient is counted', {
      job_id: jobId,
      recipients: items.length,
    });
    result.duplicates += items.length;
    compiledJobs.delete(jobId);
    return undefined;
  }
  const job = await compiledJob(deps.contents, jobId, look.run);
  if (job) return { job, items, look, lookedAt };
  log('ERROR', 'Dropping messages of a job that does not exist', { job_id: jobId, messages: items.length });
  return undefined;
}
