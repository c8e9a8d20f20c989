/**
 * Each API key may send to `limit` recipients per UTC day, cc copies included. A job's recipients
 * are counted when it is accepted, by one conditional update that succeeds only if they fit, so two
 * jobs at once can never together pass the limit; what a cancel kept from being sent is given back.
 */
export interface RecipientQuota {
  readonly limit: number;
  /** Counts `amount` recipients on the key's day of `now`; a `QuotaExceededError` when they do not fit. */
  charge(apiKeyId: string, amount: number, now: Date): Promise<{ day: string }>;
  /** Gives recipients back to the day they were counted on (never below 0). */
  refund(apiKeyId: string, day: string, amount: number): Promise<void>;
  /** Recipients counted on the key's day of `now`. */
  used(apiKeyId: string, now: Date): Promise<{ day: string; used: number }>;
}

/** The UTC day of a moment, `YYYY-MM-DD`: quotas reset at midnight UTC, as API Gateway's do. */
export const utcDay = (now: Date): string => now.toISOString().slice(0, 10);

/** The next midnight UTC after `now`: when the quota resets. */
export function nextReset(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
}

/** Whole seconds until the reset, for `Retry-After` (at least 1). */
export const secondsUntilReset = (now: Date): number =>
  Math.max(1, Math.ceil((nextReset(now).getTime() - now.getTime()) / 1000));
