import { describe, expect, it } from 'vitest';
import { SendPacer } from '../../../lambdas/core/transport/send-pacer';

/**
 * A simulated clock: `sleep` resolves when the simulation reaches its time. `run` advances to each
 * timer in turn, letting the woken tasks go on before the next.
 */
function simulatedClock(start = 1_000_000) {
  let now = start;
  const timers: { at: number; wake: () => void }[] = [];
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  return {
    now: () => now,
    sleep: (ms: number) =>
      new Promise<void>((wake) => {
        timers.push({ at: now + ms, wake });
      }),
    advance(ms: number) {
      now += ms;
    },
    async runUntil(end: number) {
      await settle();
      for (;;) {
        timers.sort((a, b) => a.at - b.at);
        const next = timers[0];
        if (!next || next.at > end) break;
        timers.shift();
        now = Math.max(now, next.at);
        next.wake();
        await settle();
      }
      now = Math.max(now, end);
    },
  };
}

describe('SendPacer', () => {
  it('spaces sends by their recipients over the rate', async () => {
    const clock = simulatedClock();
    const pacer = new SendPacer(10, clock);
    const starts: number[] = [];
    const send = async (recipients: number) => {
      await pacer.take(recipients);
      starts.push(clock.now() - 1_000_000);
    };

    const done = (async () => {
      await send(1);
      await send(3);
      await send(1);
      await send(2);
    })();
    await clock.runUntil(1_000_000 + 10_000);
    await done;

    // One recipient is 100 ms of a rate of 10 a second; three are 300 ms.
    expect(starts).toEqual([0, 100, 400, 500]);
  });

  it('does not bank an idle spell: after a pause the next send starts at once, and the one after waits its turn', async () => {
    const clock = simulatedClock();
    const pacer = new SendPacer(2, clock);
    await pacer.take(1);
    clock.advance(10_000);
    expect(pacer.waitMs()).toBe(0);
    await pacer.take(1);
    expect(pacer.waitMs()).toBe(500);
  });

  it('over a simulated minute, concurrent senders start at most the rate times the time elapsed, plus one send', async () => {
    const rate = 14;
    const clock = simulatedClock();
    const pacer = new SendPacer(rate, clock);
    const start = clock.now();
    const end = start + 60_000;
    const starts: { at: number; recipients: number }[] = [];
    let seed = 7;
    const recipientsOfNextSend = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return 1 + (seed % 5);
    };
    // Four senders at once, as a consumer runs them, each sending until the minute is over.
    const sender = async () => {
      // Bounded, so that a pacer that never waits fails the check below instead of spinning forever.
      for (let sends = 0; sends < 10_000 && clock.now() < end; sends++) {
        const recipients = recipientsOfNextSend();
        await pacer.take(recipients);
        if (clock.now() >= end) break;
        starts.push({ at: clock.now(), recipients });
      }
    };
    const senders = Promise.all([sender(), sender(), sender(), sender()]);
    await clock.runUntil(end + 10_000);
    await senders;

    expect(starts.length).toBeGreaterThan(100);
    const sorted = [...starts].sort((a, b) => a.at - b.at);
    // Every window from one start to a later one: what started in it is bounded by the rate.
    for (let i = 0; i < sorted.length; i++) {
      let recipients = 0;
      for (let j = i; j < sorted.length; j++) {
        const last = sorted[j] as { at: number; recipients: number };
        recipients += last.recipients;
        const elapsedSeconds = (last.at - (sorted[i] as { at: number }).at) / 1000;
        expect(recipients).toBeLessThanOrEqual(rate * elapsedSeconds + last.recipients + 1e-9);
      }
    }
    // And the pacer does not starve the senders: the minute is used at nearly the full rate.
    const total = sorted.reduce((sum, { recipients }) => sum + recipients, 0);
    expect(total).toBeGreaterThan(rate * 60 - 10);
    expect(total).toBeLessThanOrEqual(rate * 60 + 5);
  });

  it('says how long the next send would wait, from the sends already queued', async () => {
    const clock = simulatedClock();
    const pacer = new SendPacer(2, clock);
    expect(pacer.waitMs()).toBe(0);

    void pacer.take(1);
    expect(pacer.waitMs()).toBe(500);
    // Queued behind the first: it starts at 500 ms and holds the pacer for 1.5 s more.
    void pacer.take(3);
    expect(pacer.waitMs()).toBe(2_000);

    clock.advance(1_500);
    expect(pacer.waitMs()).toBe(500);
    clock.advance(1_000);
    expect(pacer.waitMs()).toBe(0);
  });

  it('refuses a rate that is not positive', () => {
    expect(() => new SendPacer(0)).toThrow('positive');
  });
});
