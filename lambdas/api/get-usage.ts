// GET /usage: handler --> recipient quota (DynamoDB); the request limits are the usage plan's, set by the stack
import { z } from 'zod';
import { recipientQuotaFromEnv } from '../core/adapters';
import { readEnv } from '../core/env';
import { apiHandler, callerApiKeyId, json } from '../core/http';
import { nextReset, type RecipientQuota } from '../core/quota/recipient-quota';

/** The usage plan's limits on requests, as the stack configured them. */
export interface RequestLimits {
  rateLimit: number;
  burstLimit: number;
  quotaPerDay: number;
}

export const makeGetUsage = ({
  quota,
  requests,
  now = () => new Date(),
}: {
  quota: Pick<RecipientQuota, 'used' | 'limit'>;
  requests: RequestLimits;
  now?: () => Date;
}) =>
  apiHandler(async (event) => {
    const at = now();
    const { day, used } = await quota.used(callerApiKeyId(event), at);
    return json(200, {
      day,
      resets_at: nextReset(at).toISOString(),
      recipients: { used, limit: quota.limit, remaining: Math.max(0, quota.limit - used) },
      requests: {
        rate_limit_per_second: requests.rateLimit,
        burst_limit: requests.burstLimit,
        quota_per_day: requests.quotaPerDay,
      },
    });
  });

const env = readEnv({
  USAGE_PLAN_RATE_LIMIT: z.coerce.number().positive(),
  USAGE_PLAN_BURST_LIMIT: z.coerce.number().int().nonnegative(),
  USAGE_PLAN_QUOTA_PER_DAY: z.coerce.number().int().positive(),
});

export const handler = makeGetUsage({
  quota: recipientQuotaFromEnv(),
  requests: {
    rateLimit: env.USAGE_PLAN_RATE_LIMIT,
    burstLimit: env.USAGE_PLAN_BURST_LIMIT,
    quotaPerDay: env.USAGE_PLAN_QUOTA_PER_DAY,
  },
});
