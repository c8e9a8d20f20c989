// POST /sending/resume (operator): handler --> SES configuration set switched on + the guard's record (DynamoDB)
import { auditTrailFromEnv, eventOutboxFromEnv, sendingControlsFromEnv } from '../core/adapters';
import { apiHandler, callerApiKeyId, json, parseJsonBody } from '../core/http';
import { logger } from '../core/observability/telemetry';
import {
  resumeRequest,
  resumeSending,
  type SendingControlsDependencies,
} from '../core/sending/sending-controls';

export const makeResumeSending = (deps: SendingControlsDependencies) =>
  apiHandler(async (event) => {
    const request = parseJsonBody(event, resumeRequest);
    const apiKeyId = callerApiKeyId(event);
    const view = await resumeSending(deps, { ...request, apiKeyId });
    // An operator's act, kept in the logs with who and why (the guard's record keeps the last one).
    logger.warn('Sending resumed', {
      api_key_id: apiKeyId,
      reason: request.reason,
      force: request.force ?? false,
    });
    return json(200, view);
  });

export const handler = makeResumeSending(sendingControlsFromEnv(eventOutboxFromEnv(), auditTrailFromEnv()));
