import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { backoff } from '../../concurrency';
import type { EventOutbox } from '../../events/dynamodb/outbox';
import { jobEnded } from '../../events/events';
import { reputationAdded } from '../../sending/dynamodb/dynamo-reputation';
import { OUTCOME_STATUSES } from '../deliveries';
import { outcomesRecorded } from '../job-status';
import {
  type JobPart,
  type OutcomeCounts,
  type OutcomeTally,
  type PartCounted,
  tallied,
} from '../outcome-counts';
import { type RawItem, rawNumber, rawString } from './raw-item';

/** Attempts at one part's transaction (conflicts with another part of the same job, throttles). */
const MAX_ATTEMPTS = 12;
/**
 * How long a part's mark is kept: past the stream's 24-hour retention, after which Lambda can no
 * longer hand the batch over again. DynamoDB's TTL deletes it later (within days).
 */
const MARK_RETENTION_SECONDS = 2 * 24 * 3600;

/**
 * The DynamoDB adapter of `OutcomeCounts`: each part is one transaction of two writes in the jobs
 * table (three with emails sent: the reputation window's hour), the part's mark (how many of its changes are counted, an item of its own with a TTL, keyed
 * `<job id>#counted#<part id>`, which no reader of jobs ever asks for) and the job's counters.
 */
export class DynamoOutcomeCounts implements OutcomeCounts {
  private readonly now: () => Date;

  constructor(
    private readonly options: {
      client: DynamoDBDocumentClient;
      jobsTable: string;
      /** Where the end of a job is told (`Job Completed`, `Job Cancelled`), in the transaction that ends it. */
      outbox?: EventOutbox | undefined;
      now?: () => Date;
    },
  ) {
    this.now = options.now ?? (() => new Date());
  }

  /**
   * First tries as if nothing of the part was counted and other recipients remain after it. A
   * failed condition hands back what is true: the mark (count only the changes after it), or the
   * job's `remaining` and cancel (exactly as many left: this part ends the job, `cancelled` if a
   * cancel was asked). A conflict with another part of the job is retried after a jittered backoff.
   */
  async count(part: JobPart): Promise<PartCounted> {
    let from = 0;
    // The job as the last failed condition found it: what the ending write adds to.
    let found: RawItem | undefined;
    let last = false;
    let cancelling = false;
    let excess = 0;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const tally = withoutExcess(part.tallyFrom(from), excess);
      const outcomes = tallied(tally);
      if (outcomes === 0) return { state: 'unchanged' };
      const now = this.now();
      try {
        await this.options.client.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Update: {
                  TableName: this.options.jobsTable,
                  Key: { job_id: `${part.jobId}#counted#${part.id}` },
                  UpdateExpression: 'SET counted_changes = :through, expires_at = :expires',
                  ConditionExpression:
                    from === 0 ? 'attribute_not_exists(job_id)' : 'counted_changes = :from',
                  ExpressionAttributeValues: {
                    ':through': part.changes.length,
                    ':expires': Math.floor(now.getTime() / 1000) + MARK_RETENTION_SECONDS,
                    ...(from === 0 ? {} : { ':from': from }),
                  },
                  ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
                },
              },
              {
                Update: {
                  TableName: this.options.jobsTable,
                  Key: { job_id: part.jobId },
                  ...outcomesRecorded({ ...tally, now: now.toISOString(), last, cancelling }),
                  ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
                },
              },
              // The reputation window's sent emails, counted with them (once, as they are).
              ...(tally.sent > 0 ? [reputationAdded(this.options.jobsTable, 'sent', tally.sent, now)] : []),
              // The part that ends the job tells so, with the end it writes and the counts it ends with.
              ...(last && found && this.options.outbox
                ? [this.options.outbox.put(jobEnded(endOf(part.jobId, found, tally, cancelling, now)), now)]
                : []),
            ],
          }),
        );
        return { state: 'counted', outcomes, ended: last, ...(excess > 0 ? { dropped: excess } : {}) };
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const [mark, job] = error.CancellationReasons ?? [];
        if (mark?.Code === 'ConditionalCheckFailed') {
          const counted = rawNumber(mark.Item as RawItem | undefined, 'counted_changes') ?? 0;
          // Handed over again with fewer records than counted before: Lambda does not do that while it
          // retries one batch; if it ever does, the records after these may be counted again.
          if (counted > part.changes.length) return { state: 'unchanged', shorter: true };
          if (counted === part.changes.length) return { state: 'unchanged' };
          from = counted;
          continue;
        }
        if (job?.Code === 'ConditionalCheckFailed') {
          found = job.Item as RawItem | undefined;
          const remaining = rawNumber(found, 'remaining');
          if (remaining === undefined) return { state: 'gone' };
          // More outcomes than recipients left: some were counted before (a stream position lost and
          // read again). Throwing would stop the shard for a day; the part counts what is left, ends
          // the job, and says how many it dropped.
          excess = Math.max(0, tallied(part.tallyFrom(from)) - remaining);
          // Exactly this many left (or fewer): this part is the last. More left: the cancel was believed wrong.
          last = remaining <= outcomes;
          cancelling = found?.cancel_requested_at !== undefined;
          continue;
        }
        // TransactionConflict (another part of the job is being counted) or a throttle.
        await backoff(attempt);
      }
    }
    throw new Error(`Could not count outcomes of job ${part.jobId} after ${MAX_ATTEMPTS} attempts`);
  }
}

/**
 * The end of a job as the part that ends it writes it: the job as its condition was last found
 * (nothing else was counted since, or the write's exact-remaining condition would have failed)
 * plus this part's tally.
 */
function endOf(jobId: string, found: RawItem, tally: OutcomeTally, cancelling: boolean, now: Date) {
  const count = (status: keyof OutcomeTally) => (rawNumber(found, status) ?? 0) + tally[status];
  return {
    job: {
      job_id: jobId,
      api_key_id: rawString(found, 'api_key_id') ?? '',
      total_emails: rawNumber(found, 'total_emails') ?? 0,
      created_at: rawString(found, 'created_at') ?? '',
    },
    status: cancelling ? ('cancelled' as const) : ('completed' as const),
    completed_at: now.toISOString(),
    counts: {
      sent: count('sent'),
      failed: count('failed'),
      suppressed: count('suppressed'),
      cancelled: count('cancelled'),
    },
  };
}

/** A tally less `excess` outcomes (sent first, then failed, suppressed, cancelled): what fits in the job. */
function withoutExcess(tally: OutcomeTally, excess: number): OutcomeTally {
  const kept = { ...tally };
  let left = excess;
  for (const status of OUTCOME_STATUSES) {
    const taken = Math.min(kept[status], left);
    kept[status] -= taken;
    left -= taken;
  }
  return kept;
}
