import {
  type ChunkMessage,
  type EmailMessage,
  emailMessage,
  type QueuedNonprofit,
  type RecipientMessage,
} from '../../queue/email-queue';
import { compileTemplate, type TemplatePart } from '../../templates/template';
import type { JobContent } from '../job';
import type { JobContentStore } from '../job-store';
import type { Log, ProcessEmailsDependencies, ReceivedMessage } from './batch';

/** What a consumer needs of a job, compiled once per execution environment (it never changes). */
export interface CompiledJob {
  jobId: string;
  content: JobContent;
  body: TemplatePart[];
  html: TemplatePart[] | null;
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
    html: content.html ? compileTemplate(content.html) : null,
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

/**
 * Groups a batch by job, with each job's compiled content. A message that can never succeed (not
 * ours, or of a job that does not exist) is logged and left out rather than retried.
 */
export async function groupByJob(
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
    const items = byJob.get(email.job_id) ?? [];
    items.push(...itemsOf(message, email));
    byJob.set(email.job_id, items);
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
