import { describe, expect, it } from 'vitest';
import { periodStart, Quota, TokenBucket } from '../../../local/token-bucket';

describe('TokenBucket', () => {
  it('lets a burst through, then refills at the rate', () => {
    let now = 0;
    const bucket = new TokenBucket(2, 3, () => now);

    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    now = 499;
    expect(bucket.tryTake()).toBe(false);
    now = 500;
    expect(bucket.tryTake()).toBe(true);
    now = 60_000;
    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
  });

  it('throttles everything with a burst of zero', () => {
    expect(new TokenBucket(10, 0, () => 0).tryTake()).toBe(false);
  });
});

describe('Quota', () => {
  it('counts requests per UTC day and starts again the next day', () => {
    let now = Date.parse('2026-11-27T23:59:00Z');
    const quota = new Quota(2, 'DAY', () => now);
    for (let used = 0; used < 2; used++) {
      expect(quota.hasRoom()).toBe(true);
      quota.take();
    }
    expect(quota.hasRoom()).toBe(false);
    now = Date.parse('2026-11-28T00:00:00Z');
    expect(quota.hasRoom()).toBe(true);
  });

  it('starts weeks on Monday and months on the first', () => {
    const friday = Date.parse('2026-11-27T12:00:00Z');
    expect(new Date(periodStart('WEEK', friday)).toISOString()).toBe('2026-11-23T00:00:00.000Z');
    expect(new Date(periodStart('MONTH', friday)).toISOString()).toBe('2026-11-01T00:00:00.000Z');
  });
});
