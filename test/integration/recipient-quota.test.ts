import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { QuotaExceededError } from '../../lambdas/core/errors';
import { DynamoRecipientQuota } from '../../lambdas/core/quota/dynamodb/dynamo-recipient-quota';
import { nextReset, utcDay } from '../../lambdas/core/quota/recipient-quota';
import { localDocumentClient, tableNamed } from '../support/local-tables';

const { client, destroy } = localDocumentClient();
afterAll(destroy);
const tableName = tableNamed('DataUsage');
const quota = (limit: number) => new DynamoRecipientQuota({ client, tableName, limit });
const NOW = new Date('2026-11-28T20:15:00.000Z');

describe('the recipient quota, on DynamoDB Local', () => {
  it('counts charges per key and UTC day, refusing the one that does not fit with what remains', async () => {
    const key = `key-${randomUUID()}`;
    const limited = quota(100);
    expect(await limited.charge(key, 60, NOW)).toEqual({ day: '2026-11-28' });
    expect(await limited.charge(key, 40, NOW)).toEqual({ day: '2026-11-28' });
    const refused = await limited.charge(key, 1, NOW).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(QuotaExceededError);
    expect((refused as QuotaExceededError).fields).toEqual({
      limit: 100,
      remaining: 0,
      requested: 1,
      resets_at: '2026-11-29T00:00:00.000Z',
    });
    // 3h45m to midnight UTC.
    expect((refused as QuotaExceededError).headers).toEqual({ 'retry-after': String(3 * 3600 + 45 * 60) });
    expect(await limited.used(key, NOW)).toEqual({ day: '2026-11-28', used: 100 });
    // Another day, and another key, start from nothing.
    expect(await limited.used(key, nextReset(NOW))).toEqual({ day: '2026-11-29', used: 0 });
    expect((await limited.used(`other-${key}`, NOW)).used).toBe(0);
  });

  it('lets charges at once pass only as far as the limit, whatever their order', async () => {
    const key = `key-${randomUUID()}`;
    const limited = quota(50);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => limited.charge(key, 7, NOW)));
    expect(results.filter(({ status }) => status === 'fulfilled')).toHaveLength(7);
    expect((await limited.used(key, NOW)).used).toBe(49);
  });

  it('gives back, never below zero, and never to a day that counted nothing', async () => {
    const key = `key-${randomUUID()}`;
    const limited = quota(10);
    await limited.charge(key, 8, NOW);
    await limited.refund(key, utcDay(NOW), 5);
    expect((await limited.used(key, NOW)).used).toBe(3);
    await limited.refund(key, utcDay(NOW), 5);
    expect((await limited.used(key, NOW)).used).toBe(3);
    await limited.refund(key, '2026-01-01', 5);
    expect((await limited.used(key, new Date('2026-01-01T12:00:00Z'))).used).toBe(0);
  });

  it('refuses a job larger than the whole limit, saying to split it', async () => {
    const key = `key-${randomUUID()}`;
    await expect(quota(10).charge(key, 11, NOW)).rejects.toMatchObject({
      status: 429,
      code: 'QUOTA_EXCEEDED',
      message: expect.stringContaining('split it into smaller jobs'),
      fields: { limit: 10, remaining: 10, requested: 11 },
    });
    expect((await quota(10).used(key, NOW)).used).toBe(0);
  });
});
