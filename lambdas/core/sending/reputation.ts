/**
 * The reputation guard. SES reviews an account at a 5 % bounce rate or a 0.1 % complaint rate and
 * may pause all of its sending; the guard pauses this deployment's sending itself, earlier, at lower
 * rates, so an operator looks before SES does. Its rates come from this stack's own ledger (emails
 * sent, hard bounces and complaints reported on them), counted per hour, so other senders of a
 * shared account do not move them.
 */

/**
 * The window's counts are kept per hour and spread over this many items, one drawn at random for
 * each write: writers of different jobs rarely meet on one item (a transaction that does is
 * retried), and one job's writes spread too. Exactly-once comes from the transactions they ride in.
 */
export const REPUTATION_SHARDS = 8;

/** The hour an event is counted in: `2026-12-04T08` (UTC). */
export const reputationHour = (at: Date) => at.toISOString().slice(0, 13);

/** Which of the hour's items a write goes to. */
export const reputationShard = () => Math.floor(Math.random() * REPUTATION_SHARDS);

/** The hours of a window ending with `now`'s, newest first, none before `since` (a resume). */
export function windowHours(now: Date, hours: number, since?: Date): string[] {
  const first = since ? reputationHour(since) : undefined;
  const list: string[] = [];
  for (let back = 0; back < hours; back++) {
    const hour = reputationHour(new Date(now.getTime() - back * 3_600_000));
    if (first !== undefined && hour < first) break;
    list.push(hour);
  }
  return list;
}

export interface ReputationCounts {
  /** Emails handed to SES (recipients; cc copies are counted in neither side of a rate). */
  sent: number;
  /** Permanent bounces SES reported on them (transient ones say nothing of the list). */
  bounced: number;
  complained: number;
}

export interface ReputationThresholds {
  windowHours: number;
  /** Below this many sent emails in the window the rates mean nothing, and the guard never pauses. */
  minVolume: number;
  /** Rates (0.02 is 2 %) at which sending pauses. */
  bounceRate: number;
  complaintRate: number;
}

export interface ReputationVerdict extends ReputationCounts {
  bounce_rate: number;
  complaint_rate: number;
  /** Why sending should pause, when it should. */
  over?: string;
}

const percent = (rate: number) => `${Number((rate * 100).toFixed(3))} %`;

/** The window's rates, and whether they call for a pause. */
export function judge(counts: ReputationCounts, thresholds: ReputationThresholds): ReputationVerdict {
  const bounceRate = counts.sent > 0 ? counts.bounced / counts.sent : 0;
  const complaintRate = counts.sent > 0 ? counts.complained / counts.sent : 0;
  const verdict = { ...counts, bounce_rate: bounceRate, complaint_rate: complaintRate };
  if (counts.sent < thresholds.minVolume) return verdict;
  const reasons = [
    ...(bounceRate >= thresholds.bounceRate
      ? [`bounce rate ${percent(bounceRate)} reached ${percent(thresholds.bounceRate)}`]
      : []),
    ...(complaintRate >= thresholds.complaintRate
      ? [`complaint rate ${percent(complaintRate)} reached ${percent(thresholds.complaintRate)}`]
      : []),
  ];
  if (reasons.length === 0) return verdict;
  return {
    ...verdict,
    over: `${reasons.join(' and ')} over ${counts.sent} emails in the last ${thresholds.windowHours} hours`,
  };
}

/** The per-hour counts of the window (the ledger's tally, kept by the outcome counter and the feedback consumer). */
export interface ReputationWindow {
  counts(hours: readonly string[]): Promise<ReputationCounts>;
}

/** The sending switch: the stack's SES configuration set (`PutConfigurationSetSendingOptions`). */
export interface SendingSwitch {
  set(enabled: boolean): Promise<void>;
  /** Whether the set sends now (someone may have turned it on in the console). */
  isOn(): Promise<boolean>;
}

/** What the guard did last: a pause (why, and the window then), and the resume after it, if any. */
export interface GuardRecord {
  paused: boolean;
  paused_at?: string;
  /** Whether the pause's switch went off (the record is written first, then the switch). */
  switched?: boolean;
  reason?: string;
  /** The window's counts and rates when it paused. */
  window?: ReputationVerdict;
  resumed_at?: string;
  resumed_by?: string;
  resume_reason?: string;
  /** The resume hour's counts at the resume: the window after it leaves them out (they were looked at). */
  baseline?: ReputationCounts & { hour: string };
}

export interface GuardStore {
  get(): Promise<GuardRecord | undefined>;
  /**
   * Records a pause if the record is still as `seen` (not paused, resumed at the same time): false
   * when another run paused, or an operator resumed, since it was read.
   */
  pause(
    record: Required<Pick<GuardRecord, 'paused_at' | 'reason' | 'window'>>,
    seen: GuardRecord | undefined,
  ): Promise<boolean>;
  /** Notes that the pause's switch is off. */
  switched(pausedAt: string): Promise<void>;
  /** Records a resume if the record is still as `seen` (the same pause, or none): false otherwise. */
  resume(
    record: Required<Pick<GuardRecord, 'resumed_at' | 'resumed_by' | 'resume_reason' | 'baseline'>>,
    seen: GuardRecord | undefined,
  ): Promise<boolean>;
}

export interface GuardDependencies {
  window: ReputationWindow;
  switch: SendingSwitch;
  store: GuardStore;
  thresholds: ReputationThresholds;
  now?: () => Date;
}

/**
 * The window the guard reads now: its hours, from the last resume's on, less what that hour held at
 * the resume (it was looked at, and let go on purpose).
 */
export async function currentWindow(
  deps: Pick<GuardDependencies, 'window' | 'thresholds' | 'now'>,
  record?: GuardRecord,
): Promise<{ since: string; hours: string[]; verdict: ReputationVerdict }> {
  const now = deps.now?.() ?? new Date();
  const resumed = record?.resumed_at ? new Date(record.resumed_at) : undefined;
  const hours = windowHours(now, deps.thresholds.windowHours, resumed);
  const counts = await deps.window.counts(hours);
  const baseline = record?.baseline;
  if (baseline && hours.includes(baseline.hour))
    for (const counter of ['sent', 'bounced', 'complained'] as const)
      counts[counter] = Math.max(0, counts[counter] - baseline[counter]);
  const since = record?.resumed_at ?? `${hours.at(-1) ?? reputationHour(now)}:00:00.000Z`;
  return { since, hours, verdict: judge(counts, deps.thresholds) };
}

/** Who `resumed_by` names when the set was found on again without a resume through the API. */
export const RESUMED_OUTSIDE = 'outside the API';

/**
 * Looks at the window after new bounces or complaints were counted: over a threshold, it records
 * the pause (only if nothing changed since it read the record, so a run that read the window before
 * an operator's resume never pauses on what the operator let go), then turns the configuration
 * set's sending off (SES then refuses every email sent with it; the consumers put them back to wait,
 * nothing is failed), and notes that it did. A paused record whose switch never went off is
 * switched again; one whose switch was turned on by hand (the console) counts as a resume.
 */
export async function guardReputation(deps: GuardDependencies): Promise<ReputationVerdict | undefined> {
  const now = deps.now?.() ?? new Date();
  let record = await deps.store.get();
  if (record?.paused && record.paused_at) {
    if (!record.switched) {
      await deps.switch.set(false);
      await deps.store.switched(record.paused_at);
      return undefined;
    }
    if (!(await deps.switch.isOn())) return undefined;
    // Turned on by hand: the window starts again, as after a resume through the API.
    const hour = reputationHour(now);
    const resumed = {
      resumed_at: now.toISOString(),
      resumed_by: RESUMED_OUTSIDE,
      resume_reason: 'The configuration set was turned on outside POST /sending/resume',
      baseline: { ...(await deps.window.counts([hour])), hour },
    };
    if (!(await deps.store.resume(resumed, record))) return undefined;
    record = { ...record, paused: false, ...resumed };
  }
  const { verdict } = await currentWindow(deps, record);
  if (!verdict.over) return undefined;
  const pausedAt = now.toISOString();
  if (!(await deps.store.pause({ paused_at: pausedAt, reason: verdict.over, window: verdict }, record)))
    return undefined;
  await deps.switch.set(false);
  await deps.store.switched(pausedAt);
  return verdict;
}
