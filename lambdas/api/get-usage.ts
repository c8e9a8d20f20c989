// GET /usage: handler --> recipient quota (DynamoDB); the request limits are the usage plan's, set by the stack
import { recipientQuotaFromEnv } from '../core/adapters';
import { apiHandler, callerApiKeyId, json } from '../core/http';
import { nextReset, type RecipientQuota } from '../core/quota/recipient-quota';
import { readSettings, SETTING } from '../core/settings';

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

export const handler = makeGetUsage({
  quota: recipientQuotaFromEnv(),
  requests: readSettings({
    rateLimit: SETTING.usagePlanRateLimit,
    burstLimit: SETTING.usagePlanBurstLimit,
    quotaPerDay: SETTING.usagePlanQuotaPerDay,
  }),
});
