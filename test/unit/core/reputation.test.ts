import { describe, expect, it } from 'vitest';
import {
  type GuardRecord,
  type GuardStore,
  guardReputation,
  judge,
  type ReputationCounts,
  reputationShard,
  windowHours,
} from '../../../lambdas/core/sending/reputation';
import { resumeSending, sendingView } from '../../../lambdas/core/sending/sending-controls';

const THRESHOLDS = { windowHours: 24, minVolume: 500, bounceRate: 0.02, complaintRate: 0.0008 };
const NOW = new Date('2026-12-04T08:30:00.000Z');

/** A window of fixed counts per hour, a guard record in memory (with the store's conditions), and a switch that remembers. */
function guard(perHour: Record<string, ReputationCounts>, record?: GuardRecord) {
  const state = { record, enabled: !record?.paused, switched: [] as boolean[] };
  const store: GuardStore = {
    get: async () => state.record,
    pause: async (pause, seen) => {
      if (state.record?.paused || state.record?.resumed_at !== seen?.resumed_at) return false;
      state.record = { ...state.record, paused: true, switched: false, ...pause };
      return true;
    },
    switched: async (pausedAt) => {
      if (state.record?.paused_at === pausedAt) state.record = { ...state.record, switched: true };
    },
    resume: async (resume, seen) => {
      if (state.record?.paused_at !== seen?.paused_at) return false;
      state.record = { ...state.record, paused: false, ...resume };
      return true;
    },
  };
  const deps = {
    window: {
      counts: async (hours: readonly string[]) => {
        const total = { sent: 0, bounced: 0, complained: 0 };
        for (const hour of hours)
          for (const key of ['sent', 'bounced', 'complained'] as const)
            total[key] += perHour[hour]?.[key] ?? 0;
        return total;
      },
    },
    switch: {
      set: async (enabled: boolean) => {
        state.switched.push(enabled);
        state.enabled = enabled;
      },
      isOn: async () => state.enabled,
    },
    sending: {
      state: async () => ({ enabled: state.enabled, account: true, set: state.enabled }),
    },
    store,
    thresholds: THRESHOLDS,
    now: () => NOW,
  };
  return { deps, state };
}

describe('the reputation window', () => {
  it('reads the hours back from now, none before a resume', () => {
    expect(windowHours(NOW, 3)).toEqual(['2026-12-04T08', '2026-12-04T07', '2026-12-04T06']);
    expect(windowHours(NOW, 24, new Date('2026-12-04T07:59:00.000Z'))).toEqual([
      '2026-12-04T08',
      '2026-12-04T07',
    ]);
  });

  it('spreads jobs over its shards', () => {
    const shards = new Set(Array.from({ length: 400 }, () => reputationShard()));
    expect(shards).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7]));
  });

  it('pauses at either threshold, and never below the minimum volume', () => {
    expect(judge({ sent: 1000, bounced: 19, complained: 0 }, THRESHOLDS).over).toBeUndefined();
    expect(judge({ sent: 1000, bounced: 20, complained: 0 }, THRESHOLDS).over).toMatch(
      /^bounce rate 2 % reached 2 % over 1000 emails in the last 24 hours$/,
    );
    expect(judge({ sent: 10_000, bounced: 0, complained: 8 }, THRESHOLDS).over).toMatch(
      /^complaint rate 0.08 %/,
    );
    // 2 complaints in 100 is 2 %, far over: too few emails to mean anything.
    const few = judge({ sent: 100, bounced: 0, complained: 2 }, THRESHOLDS);
    expect(few.complaint_rate).toBe(0.02);
    expect(few).not.toHaveProperty('over');
  });
});

describe('the reputation guard', () => {
  it('turns sending off and records why, once', async () => {
    const { deps, state } = guard({ '2026-12-04T08': { sent: 600, bounced: 0, complained: 1 } });
    const paused = await guardReputation(deps);
    expect(paused?.over).toMatch(/complaint rate/);
    expect(state.switched).toEqual([false]);
    expect(state.record).toMatchObject({
      paused: true,
      switched: true,
      paused_at: NOW.toISOString(),
      reason: paused?.over,
    });
    // Paused already: nothing more.
    expect(await guardReputation(deps)).toBeUndefined();
    expect(state.switched).toEqual([false]);
  });

  it('leaves sending alone under the thresholds', async () => {
    const { deps, state } = guard({ '2026-12-04T08': { sent: 6000, bounced: 10, complained: 1 } });
    expect(await guardReputation(deps)).toBeUndefined();
    expect(state.switched).toEqual([]);
  });

  it('refuses a resume while the window is still over, resumes with force, and starts the window again', async () => {
    const { deps, state } = guard({ '2026-12-04T08': { sent: 600, bounced: 0, complained: 1 } });
    await guardReputation(deps);
    await expect(resumeSending(deps, { reason: 'checked the list', apiKeyId: 'key-1' })).rejects.toThrow(
      /still over a threshold/,
    );
    const view = await resumeSending(deps, { reason: 'checked the list', force: true, apiKeyId: 'key-1' });
    expect(state.switched).toEqual([false, true]);
    expect(view).toMatchObject({
      sending: 'enabled',
      guard: { paused: false, resumed_by: 'key-1', resume_reason: 'checked the list' },
      // What the pause was for is left out of the window from the resume on.
      window: { sent: 0, complained: 0 },
    });
    // Nothing new since the resume: the guard leaves sending on.
    expect(await guardReputation(deps)).toBeUndefined();
    await expect(resumeSending(deps, { reason: 'once more please', apiKeyId: 'key-1' })).rejects.toThrow(
      'Sending is not paused.',
    );
  });

  it('switches again a pause whose switch never went off, and takes a set turned on by hand as a resume', async () => {
    const { deps, state } = guard(
      { '2026-12-04T08': { sent: 600, bounced: 0, complained: 1 } },
      { paused: true, switched: false, paused_at: '2026-12-04T08:00:00.000Z', reason: 'complaints' },
    );
    // The record says paused but the switch never went off (the run died between the two).
    state.enabled = true;
    expect(await guardReputation(deps)).toBeUndefined();
    expect(state.switched).toEqual([false]);
    expect(state.record).toMatchObject({ paused: true, switched: true });
    // Someone turns the set on in the console: a resume, from which the window starts again.
    state.enabled = true;
    expect(await guardReputation(deps)).toBeUndefined();
    expect(state.record).toMatchObject({ paused: false, resumed_by: 'outside the API' });
    expect(state.switched).toEqual([false]);
  });

  it('refuses to resume a pause of the account by SES, which only SES lifts', async () => {
    const { deps } = guard({});
    deps.sending.state = async () => ({
      enabled: false,
      account: false,
      set: true,
      reason: 'Sending is disabled for the account',
    });
    await expect(resumeSending(deps, { reason: 'please let us send', apiKeyId: 'key-1' })).rejects.toThrow(
      /only SES \(or AWS Support\) turns it on again/,
    );
  });

  it('shows the switch, the record, the window and the thresholds', async () => {
    const { deps } = guard({ '2026-12-04T07': { sent: 400, bounced: 4, complained: 0 } });
    expect(await sendingView(deps)).toMatchObject({
      sending: 'enabled',
      reason: null,
      guard: null,
      window: { sent: 400, bounced: 4, bounce_rate: 0.01, hours: 24 },
      thresholds: {
        window_hours: 24,
        min_volume: 500,
        pause_bounce_rate: 0.02,
        pause_complaint_rate: 0.0008,
      },
    });
  });
});
