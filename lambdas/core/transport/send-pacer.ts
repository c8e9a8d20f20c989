import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Paces sends in one execution environment to a steady number of recipients per second (SES counts
 * every To and Cc address against the account's maximum send rate). Each send reserves its share of
 * time after the one before, so over any span the environment starts at most its rate times the span,
 * plus one send: never a burst. The stack gives each of the consumer's environments an equal share.
 */
export class SendPacer {
  /** When the next send may start, in milliseconds since the epoch. */
  private next = 0;

  constructor(
    private readonly recipientsPerSecond: number,
    private readonly clock: { now(): number; sleep(ms: number): Promise<unknown> } = { now: Date.now, sleep },
  ) {
    if (!(recipientsPerSecond > 0)) throw new Error('A send rate must be positive');
  }

  /** How long the next send would wait, from now. */
  waitMs(): number {
    return Math.max(0, this.next - this.clock.now());
  }

  /** Waits for this send's turn. */
  async take(recipients: number): Promise<void> {
    const now = this.clock.now();
    const start = Math.max(now, this.next);
    this.next = start + (recipients / this.recipientsPerSecond) * 1000;
    if (start > now) await this.clock.sleep(start - now);
  }
}
