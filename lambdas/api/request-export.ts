// POST /people/{email}/export (operator): handler --> person requests (DynamoDB) + their queue (SQS) + address key
import { addressKeysFromEnv, personRequestQueueFromEnv, personRequestsFromEnv } from '../core/adapters';
import { makeRequestPersonRequest } from './person-request';

export const handler = makeRequestPersonRequest('export', {
  requests: personRequestsFromEnv(),
  queue: personRequestQueueFromEnv(),
  keys: addressKeysFromEnv(),
});
