// POST /people/{email}/erasure (operator): handler --> person requests, suppression list, registry, audit trail (DynamoDB) + their queue (SQS)
import {
  addressKeysFromEnv,
  auditTrailFromEnv,
  personRequestQueueFromEnv,
  personRequestsFromEnv,
} from '../core/adapters';
import { makeRequestPersonRequest } from './person-request';

export const handler = makeRequestPersonRequest('erasure', {
  requests: personRequestsFromEnv({ audit: auditTrailFromEnv() }),
  queue: personRequestQueueFromEnv(),
  keys: addressKeysFromEnv(),
});
