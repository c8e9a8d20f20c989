// DELETE /suppressions/{email}?force=&reason=: handler --> suppression list (DynamoDB), audit trail
import { addressKeysFromEnv, auditTrailFromEnv, suppressionsFromEnv } from '../core/adapters';
import { apiHandler, callerApiKeyId, noContent, parsePathParameter, parseQuery } from '../core/http';
import { storedEmailAddress } from '../core/nonprofits/nonprofit';
import type { SuppressionList } from '../core/suppressions/repository';
import { liftQuery } from '../core/suppressions/suppression';

/**
 * Lifts a suppression: jobs send to the address again. What a lift takes depends on why the address
 * is suppressed (`LIFT_RULES`): the person's own unsubscribe or complaint only with `force=true` and
 * a reason recording their renewed consent. The audit trail keeps each lift with its key and reason.
 */
export const makeDeleteSuppression = ({ suppressions }: { suppressions: SuppressionList }) =>
  apiHandler(async (event) => {
    const email = parsePathParameter(event, 'email', storedEmailAddress);
    const query = parseQuery(event, liftQuery);
    await suppressions.remove(email, {
      force: query.force === 'true',
      reason: query.reason,
      api_key_id: callerApiKeyId(event),
    });
    return noContent();
  });

export const handler = makeDeleteSuppression({
  // An erased address's lift removes its key's record too: the key is made with the address key.
  suppressions: suppressionsFromEnv(undefined, auditTrailFromEnv(), addressKeysFromEnv()),
});
