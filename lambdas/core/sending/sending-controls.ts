import { ConflictError } from '../errors';
import * as z from '../zod';
import {
  currentWindow,
  type GuardDependencies,
  type GuardRecord,
  type ReputationVerdict,
  reputationHour,
} from './reputation';

/** Whether SES sends for this deployment now: the account (SES's switch) and the stack's configuration set (ours). */
export interface SendingState {
  enabled: boolean;
  account: boolean;
  set: boolean;
  /** Why not, when not. */
  reason?: string;
}

export interface SendingStateReader {
  state(): Promise<SendingState>;
}

/** With the record transport nothing goes through SES: sending is never paused. */
const ON: SendingState = { enabled: true, account: true, set: true };

/** What the operator routes need: the guard's parts, SES's state, and no switch with the record transport. */
export type SendingControlsDependencies = Omit<GuardDependencies, 'switch'> & {
  switch?: GuardDependencies['switch'];
  sending?: SendingStateReader;
};

/** `GET /sending`: the switch, the guard's record, the window it reads and the thresholds it pauses at. */
export interface SendingView {
  sending: 'enabled' | 'paused';
  reason: string | null;
  guard: GuardRecord | null;
  window: ReputationVerdict & { since: string; hours: number };
  thresholds: {
    window_hours: number;
    min_volume: number;
    pause_bounce_rate: number;
    pause_complaint_rate: number;
  };
}

export async function sendingView(deps: SendingControlsDependencies): Promise<SendingView> {
  const [record, state] = await Promise.all([
    deps.store.get(),
    deps.sending ? deps.sending.state() : Promise.resolve(ON),
  ]);
  const { since, verdict } = await currentWindow(deps, record);
  const { thresholds } = deps;
  return {
    sending: state.enabled ? 'enabled' : 'paused',
    reason: state.enabled
      ? null
      : ((record?.paused ? `The reputation guard paused sending: ${record.reason}` : state.reason) ?? null),
    guard: record ?? null,
    window: { ...verdict, since, hours: thresholds.windowHours },
    thresholds: {
      window_hours: thresholds.windowHours,
      min_volume: thresholds.minVolume,
      pause_bounce_rate: thresholds.bounceRate,
      pause_complaint_rate: thresholds.complaintRate,
    },
  };
}

/** `POST /sending/resume`'s body: why (logged and kept), and `force` to resume while the rates are still over. */
export const resumeRequest = z.strictObject({
  reason: z
    .string()
    .trim()
    .min(10, 'Must say why, in at least 10 characters')
    .max(500, 'Must be at most 500 characters'),
  force: z.boolean().optional(),
});
export type ResumeRequest = z.output<typeof resumeRequest>;

/**
 * Turns sending back on after a pause (the guard's, or the configuration set's by hand). While the
 * window's rates are still over a threshold, only with `force`: the next bounce would pause it again
 * otherwise. The window starts again from the resume: what the guard paused for is not counted twice.
 */
export async function resumeSending(
  deps: SendingControlsDependencies,
  input: ResumeRequest & { apiKeyId: string },
): Promise<SendingView> {
  if (!deps.switch || !deps.sending)
    throw new ConflictError('Sending is not paused: the record transport sends nothing through SES.');
  const [record, state] = await Promise.all([deps.store.get(), deps.sending.state()]);
  // Only the configuration set is this stack's to turn on; SES's own pause of the account is not.
  if (state.set && !record?.paused)
    throw new ConflictError(
      state.account
        ? 'Sending is not paused.'
        : `${state.reason ?? 'SES paused the account'}: only SES (or AWS Support) turns it on again.`,
    );
  const { verdict } = await currentWindow(deps, record);
  if (verdict.over && !input.force) {
    const error = new ConflictError(
      `The window is still over a threshold (${verdict.over}): resume with "force": true to send all the same.`,
    );
    Object.assign(error.fields, { window: verdict });
    throw error;
  }
  const now = deps.now?.() ?? new Date();
  const hour = reputationHour(now);
  const baseline = { ...(await deps.window.counts([hour])), hour };
  const resumed = await deps.store.resume(
    { resumed_at: now.toISOString(), resumed_by: input.apiKeyId, resume_reason: input.reason, baseline },
    record,
  );
  if (!resumed)
    throw new ConflictError(
      'The guard paused sending again while this resume was on its way: look at GET /sending first.',
    );
  await deps.switch.set(true);
  return sendingView(deps);
}
