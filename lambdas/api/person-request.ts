// POST /people/{email}/export and /erasure: the one handler both routes' functions are made from
import { apiHandler, callerApiKeyId, json, parsePathParameter } from '../core/http';
import { storedEmailAddress } from '../core/nonprofits/nonprofit';
import { logger } from '../core/observability/telemetry';
import type { PersonRequestKind } from '../core/people/person-requests';
import {
  type AcceptPersonRequestDependencies,
  acceptPersonRequest,
  requestLocation,
} from '../core/people/run-person-request';

const ACCEPTED: Record<PersonRequestKind, string> = {
  export: 'The export runs in the background',
  erasure:
    'The address is suppressed and its registry entry deleted; the rest of the erasure runs in the background, once the jobs running now have ended',
};

export const makeRequestPersonRequest = (kind: PersonRequestKind, deps: AcceptPersonRequestDependencies) =>
  apiHandler(async (event) => {
    const email = parsePathParameter(event, 'email', storedEmailAddress);
    const { request_id } = await acceptPersonRequest(deps, {
      kind,
      email,
      api_key_id: callerApiKeyId(event),
    });
    logger.info('A person request accepted', { request_id, kind });
    return json(
      202,
      {
        request_id,
        status: 'queued',
        message: `${ACCEPTED[kind]}: read ${requestLocation(request_id)} for its progress and, once completed, its result.`,
      },
      { location: requestLocation(request_id) },
    );
  });
