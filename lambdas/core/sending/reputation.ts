/**
 * The reputation guard. SES reviews an account at a 5 % bounce rate or a 0.1 % complaint rate and
 * may pause all of its sending; the guard pauses this deployment's sending itself, earlier, at lower
 * rates, so an operator looks before SES does. Its rates come from this stack's own ledger (emails
 * sent, hard bounces and complaints reported on them), counted per hour, so other senders of a
 * shared account do not move them.
 */

/** The window's counts are kept per hour and spread over this many items, so concurrent writers rarely meet. */
export const REPUTATION_SHARDS = 4;

/** The hour an event is counted in: `2026-12-04T08` (UTC). */
export const reputationHour = (at: Date) => at.toISOString().slice(0, 13);

/** Which of the hour's items a job's counts go to (FNV-1a of its id). */
export function reputationShard(jobId: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < jobId.length; index++) {
    hash ^= jobId.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % REPUTATION_SHARDS;
}

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
}

/** What the guard did last: a pause (why, and the window then), and the resume after it, if any. */
export interface GuardRecord {
  paused: boolean;
  paused_at?: string;
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
  /** Records a pause unless one is recorded already: false when another run paused first. */
  pause(record: Required<Pick<GuardRecord, 'paused_at' | 'reason' | 'window'>>): Promise<boolean>;
  resume(
    record: Required<Pick<GuardRecord, 'resumed_at' | 'resumed_by' | 'resume_reason' | 'baseline'>>,
  ): Promise<void>;
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

/**
 * Looks at the window after new bounces or complaints were counted: over a threshold, it turns the
 * configuration set's sending off (SES then refuses every email; the consumers put them back to wait,
 * nothing is failed) and records why. Switching first makes a retry after a failed record safe: the
 * switch is idempotent, and only the run whose record lands reports the pause.
 */
export async function guardReputation(deps: GuardDependencies): Promise<ReputationVerdict | undefined> {
  const record = await deps.store.get();
  if (record?.paused) return undefined;
  const { verdict } = await currentWindow(deps, record);
  if (!verdict.over) return undefined;
  await deps.switch.set(false);
  const paused = await deps.store.pause({
    paused_at: (deps.now?.() ?? new Date()).toISOString(),
    reason: verdict.over,
    window: verdict,
  });
  return paused ? verdict : undefined;
}
