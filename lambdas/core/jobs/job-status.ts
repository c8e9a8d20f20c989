import type { FeedbackKind } from './feedback-kinds';
import type { JobRecord } from './job';

/**
 * The one owner of a job's status and its bookkeeping. A job is `queued` when accepted, `processing`
 * from its first counted outcome, and `completed` by the write that counts its last one (the
 * outcome counter's write whose outcomes bring `remaining` to 0, see `OutcomeCounts`). While it runs it carries the `active` marker, so the
 * sweeper's sparse index holds running jobs only, and `enqueue_deadline`: the moment by which the
 * last enqueue of its messages has ended, one way or another, which the sweeper compares with what
 * the queue can still hold. Every write of these attributes is built here, from named parts.
 */

/** The value of `active` on a running job (the index key; any constant would do). */
export const ACTIVE_MARKER = 'yes';

/** The expressions of one conditional DynamoDB update, ready to spread into an Update input. */
export interface JobUpdate {
  UpdateExpression: string;
  ConditionExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues: Record<string, unknown>;
}

/** Builds an update from named parts; every attribute and value gets a placeholder, so no name can clash with a reserved word. */
class UpdateBuilder {
  private readonly names = new Map<string, string>();
  private readonly values: Record<string, unknown> = {};
  private readonly sets: string[] = [];
  private readonly adds: string[] = [];
  private readonly removes: string[] = [];
  private readonly conditions: string[] = [];

  private name(attribute: string): string {
    let placeholder = this.names.get(attribute);
    if (!placeholder) {
      placeholder = `#a${this.names.size}`;
      this.names.set(attribute, placeholder);
    }
    return placeholder;
  }

  private value(value: unknown): string {
    const placeholder = `:v${Object.keys(this.values).length}`;
    this.values[placeholder] = value;
    return placeholder;
  }

  set(attribute: keyof JobRecord, value: unknown): this {
    this.sets.push(`${this.name(attribute)} = ${this.value(value)}`);
    return this;
  }

  setOnce(attribute: keyof JobRecord, value: unknown): this {
    const name = this.name(attribute);
    this.sets.push(`${name} = if_not_exists(${name}, ${this.value(value)})`);
    return this;
  }

  add(attribute: keyof JobRecord, amount: number): this {
    this.adds.push(`${this.name(attribute)} ${this.value(amount)}`);
    return this;
  }

  remove(attribute: keyof JobRecord): this {
    this.removes.push(this.name(attribute));
    return this;
  }

  when(attribute: keyof JobRecord, operator: '=' | '>' | '<>', value: unknown): this {
    this.conditions.push(`${this.name(attribute)} ${operator} ${this.value(value)}`);
    return this;
  }

  whenIn(attribute: keyof JobRecord, values: readonly unknown[]): this {
    const list = values.map((value) => this.value(value)).join(', ');
    this.conditions.push(`${this.name(attribute)} IN (${list})`);
    return this;
  }

  /** The set attribute does not hold `member` (true too when the attribute is absent). */
  whenLacking(attribute: keyof JobRecord, member: string): this {
    this.conditions.push(`NOT contains(${this.name(attribute)}, ${this.value(member)})`);
    return this;
  }

  addToSet(attribute: keyof JobRecord, member: string): this {
    this.adds.push(`${this.name(attribute)} ${this.value(new Set([member]))}`);
    return this;
  }

  whenPresent(attribute: keyof JobRecord): this {
    this.conditions.push(`attribute_exists(${this.name(attribute)})`);
    return this;
  }

  whenAbsent(attribute: keyof JobRecord): this {
    this.conditions.push(`attribute_not_exists(${this.name(attribute)})`);
    return this;
  }

  build(): JobUpdate {
    const clauses = [
      this.sets.length > 0 ? `SET ${this.sets.join(', ')}` : '',
      this.adds.length > 0 ? `ADD ${this.adds.join(', ')}` : '',
      this.removes.length > 0 ? `REMOVE ${this.removes.join(', ')}` : '',
    ].filter(Boolean);
    return {
      UpdateExpression: clauses.join(' '),
      ConditionExpression: this.conditions.join(' AND '),
      ExpressionAttributeNames: Object.fromEntries(
        [...this.names].map(([attribute, name]) => [name, attribute]),
      ),
      ExpressionAttributeValues: this.values,
    };
  }
}

/** The value of `scheduled` on a job waiting for its `send_at` (the index key). */
export const SCHEDULED_MARKER = 'waiting';

/**
 * A job accepted with `send_at`: `scheduled`, not running (the sweeper does not see it), in the
 * sparse index of scheduled jobs until it starts or is cancelled.
 */
export function scheduledJob(
  fields: Pick<JobRecord, 'job_id' | 'api_key_id' | 'request_hash' | 'created_at'> &
    Partial<Pick<JobRecord, 'idempotency_key'>>,
  totalEmails: number,
  sendAt: string,
): JobRecord {
  return {
    ...newJob(fields, totalEmails),
    status: 'scheduled',
    send_at: sendAt,
    scheduled: SCHEDULED_MARKER,
  };
}

/** A job as recorded at acceptance, nothing counted yet, every recipient remaining. */
function newJob(
  fields: Pick<JobRecord, 'job_id' | 'api_key_id' | 'request_hash' | 'created_at'> &
    Partial<Pick<JobRecord, 'idempotency_key' | 'enqueue_deadline'>>,
  totalEmails: number,
): Omit<JobRecord, 'status'> {
  return {
    ...fields,
    total_emails: totalEmails,
    sent: 0,
    failed: 0,
    suppressed: 0,
    remaining: totalEmails,
    updated_at: fields.created_at,
  };
}

/**
 * A scheduled job's time came: it becomes `queued` and running, as a job accepted now is, with the
 * starter's deadline as its enqueue's (the sweeper enqueues it again after that if it must). Only
 * from `scheduled`: a cancel, or another start, that got in first wins.
 */
export function scheduledJobStarted(start: { enqueueDeadline: string; now: string }): JobUpdate {
  return new UpdateBuilder()
    .when('status', '=', 'scheduled')
    .whenPresent('scheduled')
    .set('status', 'queued')
    .set('active', ACTIVE_MARKER)
    .set('enqueue_deadline', start.enqueueDeadline)
    .set('updated_at', start.now)
    .remove('scheduled')
    .build();
}

/**
 * A scheduled job cancelled before its time: it ends at once, `cancelled`, every recipient counted
 * cancelled (nothing was enqueued). Only from `scheduled`: a job that started meanwhile is
 * cancelled as a running one is.
 */
export function scheduledJobCancelled(cancel: { totalEmails: number; now: string }): JobUpdate {
  return new UpdateBuilder()
    .when('status', '=', 'scheduled')
    .whenPresent('scheduled')
    .set('status', 'cancelled')
    .set('cancelled', cancel.totalEmails)
    .set('remaining', 0)
    .set('cancel_requested_at', cancel.now)
    .set('completed_at', cancel.now)
    .set('updated_at', cancel.now)
    .remove('scheduled')
    .build();
}

/** A job as accepted: `queued`, running (so the sweeper sees it), every recipient remaining. */
export function acceptedJob(
  fields: Pick<JobRecord, 'job_id' | 'api_key_id' | 'request_hash' | 'created_at' | 'enqueue_deadline'> &
    Partial<Pick<JobRecord, 'idempotency_key'>>,
  totalEmails: number,
): JobRecord {
  return { ...newJob(fields, totalEmails), status: 'queued', active: ACTIVE_MARKER };
}

/**
 * Counts outcomes into the job. As a middle write it requires more than `count` recipients to
 * remain, and marks the job `processing`; as the last write it requires exactly `count` to remain,
 * and ends the job in the same update. A count that does not fit fails the condition, so the
 * caller learns how many remain and picks the right one: the end can never be skipped.
 *
 * Whether a cancel was requested is part of the condition too, as the writer believes it: a
 * cancelling job's middle writes leave its status `cancelling`, and its last write makes it
 * `cancelled`, not `completed`. A writer that believed wrong learns it from the failed condition.
 */
export function outcomesRecorded(outcome: {
  sent: number;
  failed: number;
  suppressed: number;
  cancelled: number;
  now: string;
  last: boolean;
  cancelling: boolean;
}): JobUpdate {
  const count = outcome.sent + outcome.failed + outcome.suppressed + outcome.cancelled;
  const update = new UpdateBuilder()
    .when('remaining', outcome.last ? '=' : '>', count)
    .add('sent', outcome.sent)
    .add('failed', outcome.failed)
    // ADD on an attribute a job recorded before suppression existed starts it from 0.
    .add('suppressed', outcome.suppressed)
    .add('remaining', -count)
    .set('updated_at', outcome.now)
    .setOnce('started_at', outcome.now);
  if (outcome.cancelled > 0) update.add('cancelled', outcome.cancelled);
  if (outcome.cancelling) update.whenPresent('cancel_requested_at');
  else update.whenAbsent('cancel_requested_at');
  if (!outcome.last) return (outcome.cancelling ? update : update.set('status', 'processing')).build();
  return update
    .set('status', outcome.cancelling ? 'cancelled' : 'completed')
    .set('completed_at', outcome.now)
    .remove('active')
    .build();
}

/**
 * A client asks to cancel a running job: it becomes `cancelling` (the consumers record each
 * recipient left `cancelled`, and the last such write ends it `cancelled`). Only once, and only
 * while the job runs: an ended job, or one cancelled already, fails the condition.
 */
export function cancelRequested(now: string): JobUpdate {
  return new UpdateBuilder()
    .whenPresent('active')
    .whenAbsent('cancel_requested_at')
    .set('cancel_requested_at', now)
    .set('status', 'cancelling')
    .set('updated_at', now)
    .build();
}

/**
 * A retry takes an ended job back: its first chunk requires the job `completed` (and, under an
 * Idempotency-Key, that the key was not used), and marks it running under the retry's `token`;
 * every chunk (the first included) moves its recipients from `failed` to `remaining`. Later chunks
 * require the same token, so two retries of one job never interleave. `deadline` is when the
 * retry's enqueue has ended at the latest, as at accept, for the sweeper.
 */
export function failuresRequeued(chunk: {
  count: number;
  token: string;
  first: boolean;
  idempotencyKey?: string | undefined;
  deadline: string;
  now: string;
}): JobUpdate {
  const update = new UpdateBuilder()
    .when('failed', '>', chunk.count - 1)
    .add('failed', -chunk.count)
    .add('remaining', chunk.count)
    .add('retried', chunk.count)
    .set('updated_at', chunk.now);
  // A later chunk needs the job still running: one that ended meanwhile is out of the sweeper's
  // sight, and recipients added to it would wait forever.
  if (!chunk.first) return update.when('retry_token', '=', chunk.token).whenPresent('active').build();
  update
    .when('status', '=', 'completed')
    .set('status', 'processing')
    .set('active', ACTIVE_MARKER)
    .set('retry_token', chunk.token)
    .set('retried_at', chunk.now)
    .add('retries', 1)
    .set('enqueue_deadline', chunk.deadline)
    .remove('completed_at')
    .remove('recovery_seen_at');
  if (chunk.idempotencyKey !== undefined)
    update.whenLacking('retry_keys', chunk.idempotencyKey).addToSet('retry_keys', chunk.idempotencyKey);
  return update.build();
}

/**
 * Which job counter each kind of SES report adds to: subsets of `sent`, never part of the sum that
 * ends a job. A `not-spam` report (a spam mark taken back) is noted on the delivery, counted nowhere.
 */
export const FEEDBACK_COUNTERS = {
  bounce: 'bounced',
  transient_bounce: 'transient_bounces',
  complaint: 'complained',
  not_spam: undefined,
  unsubscribe: 'unsubscribed',
} as const satisfies Record<FeedbackKind, keyof JobRecord | undefined>;

/** SES reported a bounce or complaint on one of the job's sent emails: counted once (the delivery's write decides). */
export function feedbackRecorded(counter: NonNullable<(typeof FEEDBACK_COUNTERS)[FeedbackKind]>): JobUpdate {
  return new UpdateBuilder().whenPresent('job_id').add(counter, 1).build();
}

/** The sweeper saw the queues empty with this running job's enqueue settled; it acts on a later run. */
export function recoveryNoticed(seenAt: string): JobUpdate {
  return new UpdateBuilder().whenPresent('active').set('recovery_seen_at', seenAt).build();
}

/**
 * The sweeper ends a running job whose every recipient has an outcome but whose counters never
 * reached them (an outcome's stream record was lost: a stream keeps records 24 hours, and an
 * emulator can drop one in a crash). The counters are set from the ledger, absolute, and only if
 * nothing was counted since the sweeper read the job (`updated_at` unchanged): a counter that was
 * merely slow would have moved it.
 */
export function countedFromLedger(job: {
  sent: number;
  failed: number;
  suppressed: number;
  cancelled: number;
  readUpdatedAt: string;
  cancelling: boolean;
  now: string;
}): JobUpdate {
  const update = new UpdateBuilder()
    .whenPresent('active')
    .when('remaining', '>', 0)
    .when('updated_at', '=', job.readUpdatedAt)
    .set('sent', job.sent)
    .set('failed', job.failed)
    .set('suppressed', job.suppressed)
    .set('cancelled', job.cancelled)
    .set('remaining', 0)
    .set('updated_at', job.now)
    .setOnce('started_at', job.now)
    .set('status', job.cancelling ? 'cancelled' : 'completed')
    .set('completed_at', job.now)
    .remove('active');
  return (
    job.cancelling ? update.whenPresent('cancel_requested_at') : update.whenAbsent('cancel_requested_at')
  ).build();
}

/** The queues were seen holding messages again: an earlier sighting no longer counts as the first look. */
export function recoveryForgotten(): JobUpdate {
  return new UpdateBuilder().whenPresent('recovery_seen_at').remove('recovery_seen_at').build();
}

/**
 * The sweeper takes charge of enqueueing a running job again, until `deadline`. The condition makes
 * it exclusive: it holds only while the job runs and nobody moved the deadline since it was read,
 * so two sweeper runs at once never enqueue the same recipients twice.
 */
export function reenqueueClaimed(claim: {
  previousDeadline: string | undefined;
  deadline: string;
  now: string;
}): JobUpdate {
  const update = new UpdateBuilder().whenPresent('active');
  if (claim.previousDeadline === undefined) update.whenAbsent('enqueue_deadline');
  else update.when('enqueue_deadline', '=', claim.previousDeadline);
  return update
    .set('enqueue_deadline', claim.deadline)
    .set('updated_at', claim.now)
    .remove('recovery_seen_at')
    .build();
}
