// POST /people/{email}/export (operator): handler --> person requests (DynamoDB) + their queue (SQS)
import { personRequestQueueFromEnv, personRequestsFromEnv } from '../core/adapters';
import { apiHandler, callerApiKeyId, json, parsePathParameter } from '../core/http';
import { emailAddress } from '../core/nonprofits/nonprofit';
import { logger } from '../core/observability/telemetry';
import {
  type AcceptPersonRequestDependencies,
  acceptPersonRequest,
  requestLocation,
} from '../core/people/run-person-request';

export const makeRequestExport = (deps: AcceptPersonRequestDependencies) =>
  apiHandler(async (event) => {
    const email = parsePathParameter(event, 'email', emailAddress);
    const { request_id } = await acceptPersonRequest(deps, {
      kind: 'export',
      email,
      api_key_id: callerApiKeyId(event),
    });
    logger.info('Export of a person’s data accepted', { request_id });
    return json(
      202,
      {
        request_id,
        status: 'queued',
        message: `The export runs in the background: read ${requestLocation(request_id)} for its progress and, once completed, its result.`,
      },
      { location: requestLocation(request_id) },
    );
  });

export const handler = makeRequestExport({
  requests: personRequestsFromEnv(),
  queue: personRequestQueueFromEnv(),
});
