import type { Page } from '../cursor';
import { NotFoundError } from '../errors';
import type { OutcomeStatus } from './deliveries';
import type { JobContent, JobRecord, JobStatus } from './job';

/**
 * The ports for jobs, one per table, so a function is given (and granted) exactly the table it
 * reads: the job items with their status and counters (`JobStore`), and what each job sends with
 * its recipient list (`JobContentStore`). The DynamoDB adapters live in `dynamodb/`.
 */

export interface JobQuery {
  status?: JobStatus | undefined;
  limit: number;
  cursor?: string | undefined;
}

export interface JobStore {
  /** Records a job item unless one with its id exists; then answers the existing one. */
  create(job: JobRecord): Promise<{ job: JobRecord; created: boolean }>;
  get(jobId: string): Promise<JobRecord | undefined>;
  listForKey(apiKeyId: string, query: JobQuery): Promise<Page<JobRecord>>;
  /** Every running job (the sparse index of `active` jobs); only those created by `createdUntil`, if given. */
  activeJobs(createdUntil?: Date): Promise<JobRecord[]>;
  /**
   * Takes charge of enqueueing a running job's recipients again until `deadline`; false when the job
   * ended or another sweeper run moved its deadline first.
   */
  claimReenqueue(
    job: Pick<JobRecord, 'job_id' | 'enqueue_deadline'>,
    deadline: Date,
    now: Date,
  ): Promise<boolean>;
  /**
   * Ends a running job from its ledger's tally of outcomes (see `countedFromLedger`); false when the
   * job changed since `job` was read, or ended.
   */
  countFromLedger(job: JobRecord, tally: Record<OutcomeStatus, number>, now: Date): Promise<boolean>;
  /** Notes when the sweeper first saw a running job recoverable (see `recovery_seen_at`). */
  noticeRecovery(jobId: string, seenAt: Date): Promise<void>;
  /** Forgets that sighting: the queues held messages again since. */
  forgetRecovery(jobId: string): Promise<void>;
  /** What a consumer must know of a job before it claims or sends (read strongly consistent: see `SendingLook`). */
  sendingLook(jobId: string): Promise<SendingLook>;
  /**
   * Records a cancel on a running job that has none; false when the job ended, or was cancelled,
   * before (the caller reads it again to tell which).
   */
  requestCancel(jobId: string, now: Date): Promise<boolean>;
  /** The scheduled jobs whose `send_at` is at or before `until`, earliest first (the sparse index). */
  scheduledBefore(until: Date): Promise<JobRecord[]>;
  /**
   * Starts a scheduled job (`queued`, running, its enqueue due by `enqueueDeadline`); false when it
   * is no longer scheduled (cancelled, or started by another run).
   */
  startScheduled(jobId: string, enqueueDeadline: Date, now: Date): Promise<boolean>;
  /**
   * Ends a scheduled job `cancelled` before anything was enqueued (told as the job's end); false
   * when it is no longer scheduled (it started meanwhile).
   */
  cancelScheduled(job: JobRecord, now: Date): Promise<boolean>;
}

/** What a job sends, and to whom, written before its job item so that a job that exists has both. */
export interface NewJobContent extends JobContent {
  job_id: string;
  /** When a scheduled job starts (not stored): its content's retention counts from then. */
  starts_at?: string | undefined;
  /** Sorted and unique: the order `GET /jobs/{id}/emails` lists them in. */
  recipients: string[];
  request_hash: string;
}

export interface JobContentStore {
  /** A job's subject alone (an export names each email's), `null` when it has none or is past retention. */
  subject(jobId: string): Promise<string | null>;
  /**
   * Writes the content and the recipient chunks. A part already written by the same request is
   * rewritten harmlessly; one written by another request under the same job id is a conflict.
   */
  put(content: NewJobContent): Promise<void>;
  content(jobId: string): Promise<JobContent | undefined>;
  /** `count` recipients from `offset`, in the job's (sorted) order. */
  recipients(jobId: string, offset: number, count: number): Promise<string[]>;
  allRecipients(jobId: string): Promise<string[]>;
}

/** A job as its owner sees it: another API key's job answers exactly as an absent one. */
export async function findOwnedJob(
  jobs: Pick<JobStore, 'get'>,
  jobId: string,
  apiKeyId: string,
): Promise<JobRecord> {
  const job = await jobs.get(jobId);
  if (!job || job.api_key_id !== apiKeyId) throw new NotFoundError(`Job ${jobId} not found.`);
  return job;
}

/**
 * A consumer's look at a job, one strongly consistent read: a cancel is seen at once; a job that
 * ended has every recipient counted, so a message of it received now is a stray duplicate (SQS
 * delivers at least once) and is dropped before it is claimed (a claim would write the recipient's
 * address again, after an erasure too); `run` tells a content compiled in an earlier run (before a
 * retry) from the current one, which an erasure may have rewritten since.
 */
export interface SendingLook {
  cancelled: boolean;
  ended: boolean;
  /** Retries started so far (`retries`): 0 on the job's first run. */
  run: number;
}
