import { type DeliveryStatus, OUTCOME_STATUSES, type OutcomeStatus } from './deliveries';
import type { JobStore } from './job-store';

// A job's counters (`sent`, `failed`, `suppressed`, `cancelled`, `remaining`) are counted from the
// deliveries table's change stream, not written with each outcome: an outcome is one conditional
// write on its delivery item (a write unit), and a stream batch's outcomes are added to each job in
// one transaction. Lambda hands a stream batch over at least once; a failed batch is handed over
// again from the same record, so a job's part of it is named by its first record and counted once.

/**
 * The attribute an outcome write sets to say "count me from the stream". Outcomes the version
 * before this one wrote were counted in their own transaction; while a deploy replaces it, both
 * write, and only the tagged ones are counted here.
 */
export const STREAM_COUNTED = 'stream_counted';

/** One change of a delivery item, as the deliveries table's stream tells it (oldest first per item). */
export interface DeliveryChange {
  /** The stream record's id: the same whenever the record is handed over again. */
  eventId: string;
  jobId: string;
  /** The item's status before and after the change (absent: there was, or is, no item). */
  before?: DeliveryStatus | undefined;
  after?: DeliveryStatus | undefined;
  /** Whether the item after the change carries `STREAM_COUNTED`: an outcome this version wrote. */
  streamCounted: boolean;
}

export type OutcomeTally = Record<OutcomeStatus, number>;

const OUTCOMES: ReadonlySet<DeliveryStatus> = new Set(OUTCOME_STATUSES);

/**
 * The outcome a change records, if it records one: a delivery that had none (new, claimed, or queued
 * again by a retry) now has one, written by this version. A change between outcomes, or out of one
 * (a retry takes `failed` back to `queued`, and counts that itself, in its own transaction), adds nothing.
 */
export function recordedOutcome(change: DeliveryChange): OutcomeStatus | undefined {
  const { before, after } = change;
  if (!change.streamCounted || after === undefined || !OUTCOMES.has(after)) return undefined;
  if (before !== undefined && OUTCOMES.has(before)) return undefined;
  return after as OutcomeStatus;
}

export const emptyTally = (): OutcomeTally => ({ sent: 0, failed: 0, suppressed: 0, cancelled: 0 });
export const tallied = (tally: OutcomeTally) =>
  tally.sent + tally.failed + tally.suppressed + tally.cancelled;

/**
 * One job's changes in a stream batch, in the stream's order. `id` names this part whenever the
 * batch is handed over again (Lambda retries a stream batch from its first record, so the job's
 * first change is the same, and its changes are these or more of them after).
 */
export class JobPart {
  readonly changes: DeliveryChange[] = [];

  constructor(readonly jobId: string) {}

  get id(): string {
    return (this.changes[0] as DeliveryChange).eventId;
  }

  /** The outcomes recorded by the changes from `from` on (those before it were counted already). */
  tallyFrom(from: number): OutcomeTally {
    const tally = emptyTally();
    for (const change of this.changes.slice(from)) {
      const outcome = recordedOutcome(change);
      if (outcome) tally[outcome]++;
    }
    return tally;
  }
}

/**
 * - `counted`: this call added `outcomes` to the job; `ended` when they were its last ones;
 *   `dropped` outcomes did not fit (more than the recipients left: counted before, see `OutcomeCounts`).
 * - `unchanged`: nothing of the part was left to count (counted before, or no outcome in it);
 *   `shorter` when an earlier delivery of the part had more records than this one.
 * - `gone`: the job does not exist (nothing to count on).
 */
export type PartCounted =
  | { state: 'counted'; outcomes: number; ended: boolean; dropped?: number }
  | { state: 'unchanged'; shorter?: boolean }
  | { state: 'gone' };

/**
 * Adds a job's part of a stream batch to its counters, at most once per change: it keeps how many of
 * the part's changes it counted (under the part's id), and counts only those after them. The write
 * that brings `remaining` to 0 ends the job (see `outcomesRecorded`). It never fails for a count that
 * does not fit (a stuck stream is worse): it counts what fits and says what it dropped.
 */
export interface OutcomeCounts {
  count(part: JobPart): Promise<PartCounted>;
}

export interface CountOutcomesDependencies {
  counts: OutcomeCounts;
  /** Reads an ended job's acceptance time, for its duration. */
  jobs: Pick<JobStore, 'get'>;
  log: (level: 'INFO' | 'WARN' | 'ERROR', message: string, detail?: Record<string, unknown>) => void;
  now?: () => Date;
}

export interface CountResult {
  /** Outcomes added to jobs by this call. */
  counted: number;
  /** Outcomes that did not fit in their job (counted before): each is an error to look into. */
  dropped: number;
  /** Jobs this call ended, with their duration from acceptance. */
  completedJobs: { jobId: string; durationSeconds: number }[];
}

/** Groups a stream batch's changes by job, in order. */
export function partsOf(changes: readonly DeliveryChange[]): JobPart[] {
  const parts = new Map<string, JobPart>();
  for (const change of changes) {
    let part = parts.get(change.jobId);
    if (!part) {
      part = new JobPart(change.jobId);
      parts.set(change.jobId, part);
    }
    part.changes.push(change);
  }
  return [...parts.values()];
}

/**
 * Counts a stream batch's outcomes into their jobs. A job whose write fails makes the whole call
 * throw after the others were counted: Lambda then hands the batch over again, and the parts counted
 * already change nothing.
 */
export async function countOutcomes(
  deps: CountOutcomesDependencies,
  changes: readonly DeliveryChange[],
): Promise<CountResult> {
  const result: CountResult = { counted: 0, dropped: 0, completedJobs: [] };
  const failures: unknown[] = [];
  // Only parts with an outcome to count make a write.
  const parts = partsOf(changes).filter((part) => tallied(part.tallyFrom(0)) > 0);
  await Promise.all(
    parts.map(async (part) => {
      try {
        const counted = await deps.counts.count(part);
        if (counted.state === 'gone') {
          deps.log('WARN', 'Outcomes of a job that does not exist; nothing counted', { job_id: part.jobId });
          return;
        }
        if (counted.state === 'unchanged') {
          if (counted.shorter)
            deps.log('WARN', 'A stream batch came again with fewer records than were counted from it', {
              job_id: part.jobId,
              part: part.id,
            });
          return;
        }
        result.counted += counted.outcomes;
        if (counted.dropped) {
          result.dropped += counted.dropped;
          deps.log(
            'ERROR',
            'More outcomes than recipients left: the excess was not counted, and the job ended',
            {
              job_id: part.jobId,
              dropped: counted.dropped,
            },
          );
        }
        if (counted.ended) result.completedJobs.push(await completion(deps, part.jobId));
      } catch (error) {
        failures.push(error);
        deps.log('ERROR', 'Could not count outcomes on a job; the stream batch is handed over again', {
          job_id: part.jobId,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }),
  );
  if (failures.length > 0) throw failures[0];
  return result;
}

/** An ended job's duration, from its acceptance; unknown (0) if the job cannot be read: it is ended already, and a retry would not end it again. */
async function completion(deps: CountOutcomesDependencies, jobId: string) {
  const now = (deps.now?.() ?? new Date()).getTime();
  try {
    const job = await deps.jobs.get(jobId);
    const accepted = job ? Date.parse(job.created_at) : Number.NaN;
    return { jobId, durationSeconds: Number.isFinite(accepted) ? (now - accepted) / 1000 : 0 };
  } catch (error) {
    deps.log('WARN', 'Could not read an ended job for its duration', {
      job_id: jobId,
      error: error instanceof Error ? error.message : String(error),
    });
    return { jobId, durationSeconds: 0 };
  }
}
