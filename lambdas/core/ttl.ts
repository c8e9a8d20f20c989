/**
 * DynamoDB's TTL: an item's `expires_at` is the second (epoch) after which DynamoDB removes it. It
 * removes it within days, not at once, so a reader that must not see expired data checks it too.
 */

const DAY_SECONDS = 86_400;

/** The `expires_at` of an item kept `days` from `from`. */
export const expiresAfter = (from: Date | string, days: number): number =>
  Math.floor(new Date(from).getTime() / 1000) + days * DAY_SECONDS;

/** Whether an item's `expires_at` has passed (an item without one never expires). */
export const isExpired = (expiresAt: unknown, now: Date = new Date()): boolean =>
  typeof expiresAt === 'number' && expiresAt <= now.getTime() / 1000;
