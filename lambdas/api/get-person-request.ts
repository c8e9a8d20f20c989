// GET /people/requests/{request_id} (operator): handler --> person requests (DynamoDB)
import { personRequestsFromEnv } from '../core/adapters';
import { NotFoundError } from '../core/errors';
import { apiHandler, json, parsePathParameter, parseQuery } from '../core/http';
import { type PersonRequestStore, personRequestQuery } from '../core/people/person-requests';
import { personRequestView } from '../core/responses';
import * as z from '../core/zod';

export const makeGetPersonRequest = ({
  requests,
}: {
  requests: Pick<PersonRequestStore, 'get' | 'findings'>;
}) =>
  apiHandler(async (event) => {
    const id = parsePathParameter(event, 'request_id', z.uuid({ message: 'Must be a request id (a UUID)' }));
    const query = parseQuery(event, personRequestQuery);
    const request = await requests.get(id);
    if (!request) throw new NotFoundError(`No request ${id} (a request and its result are kept 7 days).`);
    const emails =
      request.status === 'completed' && request.kind === 'export'
        ? await requests.findings(id, query)
        : undefined;
    return json(200, personRequestView(request, emails));
  });

export const handler = makeGetPersonRequest({ requests: personRequestsFromEnv() });
