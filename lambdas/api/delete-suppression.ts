// DELETE /suppressions/{email}?force=&reason=: handler --> suppression list (DynamoDB)
import { suppressionsFromEnv } from '../core/adapters';
import { apiHandler, callerApiKeyId, noContent, parsePathParameter, parseQuery } from '../core/http';
import { emailAddress } from '../core/nonprofits/nonprofit';
import { logger } from '../core/observability/telemetry';
import type { SuppressionList } from '../core/suppressions/repository';
import { liftQuery } from '../core/suppressions/suppression';

/**
 * Lifts a suppression: jobs send to the address again. A complaint is lifted only with `force=true`
 * and a reason; every lift is logged with who lifted what, and why, for the audit a sender owes.
 */
export const makeDeleteSuppression = ({ suppressions }: { suppressions: SuppressionList }) =>
  apiHandler(async (event) => {
    const email = parsePathParameter(event, 'email', emailAddress);
    const query = parseQuery(event, liftQuery);
    const apiKeyId = callerApiKeyId(event);
    const lifted = await suppressions.remove(email, { force: query.force === 'true' });
    logger.info('Suppression lifted', {
      suppressed_reason: lifted.reason,
      suppressed_at: lifted.suppressed_at,
      lifted_by_api_key: apiKeyId,
      ...(query.reason ? { lift_reason: query.reason } : {}),
    });
    return noContent();
  });

export const handler = makeDeleteSuppression({ suppressions: suppressionsFromEnv() });
