/**
 * API Gateway's throttling algorithm: a bucket of `burst` tokens, refilled at `rate` tokens a second;
 * a request takes one token or is throttled. The bucket starts full.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.updatedAt = now();
  }

  tryTake(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.rate);
    this.updatedAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export type QuotaPeriod = 'DAY' | 'WEEK' | 'MONTH';

/** The start of the quota period `at` falls in, in UTC, as API Gateway counts it. */
export function periodStart(period: QuotaPeriod, at: number): number {
  const date = new Date(at);
  const day = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
  if (period === 'DAY') return day;
  if (period === 'WEEK') return day - ((date.getUTCDay() + 6) % 7) * 86_400_000;
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
}

/** A request quota over a calendar period; the count starts again with each period. */
export class Quota {
  private used = 0;
  private period: number;

  constructor(
    private readonly limit: number,
    private readonly unit: QuotaPeriod,
    private readonly now: () => number = Date.now,
  ) {
    this.period = periodStart(unit, now());
  }

  /** Whether one more request fits in the current period (counted only by `take`, once it is let through). */
  hasRoom(): boolean {
    const current = periodStart(this.unit, this.now());
    if (current !== this.period) {
      this.period = current;
      this.used = 0;
    }
    return this.used < this.limit;
  }

  take(): void {
    this.used += 1;
  }
}
