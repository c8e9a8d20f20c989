// PUT /suppressions/{email}: handler --> suppression list (DynamoDB)
import { addressKeysFromEnv, auditTrailFromEnv, suppressionsFromEnv } from '../core/adapters';
import { covers } from '../core/auth/scopes';
import {
  apiHandler,
  callerApiKeyId,
  callerScopes,
  json,
  parseJsonBody,
  parsePathParameter,
} from '../core/http';
import { emailAddress } from '../core/nonprofits/nonprofit';
import type { SuppressionList } from '../core/suppressions/repository';
import { manualSuppressionRequest } from '../core/suppressions/suppression';

/**
 * An operator suppresses an address by hand: 201 when it was not suppressed, 200 with the record
 * kept when it already was (an earlier unsubscribe or bounce keeps its reason). The body is optional.
 * The job and key behind the record are shown only to a key that may read the list (least disclosure).
 */
export const makePutSuppression = ({ suppressions }: { suppressions: SuppressionList }) =>
  apiHandler(async (event) => {
    const email = parsePathParameter(event, 'email', emailAddress);
    const { note } = event.body?.trim() ? parseJsonBody(event, manualSuppressionRequest) : {};
    const { suppression, created } = await suppressions.add({
      email,
      reason: 'manual',
      api_key_id: callerApiKeyId(event),
      ...(note ? { note } : {}),
    });
    // A record kept from before names the job and key behind it: only readers of the list see those.
    const { api_key_id, job_id, ...shown } = suppression;
    return json(created ? 201 : 200, covers(callerScopes(event), 'suppressions:read') ? suppression : shown);
  });

export const handler = makePutSuppression({
  suppressions: suppressionsFromEnv(undefined, auditTrailFromEnv(), addressKeysFromEnv()),
});
