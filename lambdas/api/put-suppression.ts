// PUT /suppressions/{email}: handler --> suppression list (DynamoDB)
import { suppressionsFromEnv } from '../core/adapters';
import { apiHandler, callerApiKeyId, json, parseJsonBody, parsePathParameter } from '../core/http';
import { emailAddress } from '../core/nonprofits/nonprofit';
import type { SuppressionList } from '../core/suppressions/repository';
import { manualSuppressionRequest } from '../core/suppressions/suppression';

/**
 * An operator suppresses an address by hand: 201 when it was not suppressed, 200 with the record
 * kept when it already was (an earlier unsubscribe or bounce keeps its reason). The body is optional.
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
    return json(created ? 201 : 200, suppression);
  });

export const handler = makePutSuppression({ suppressions: suppressionsFromEnv() });
