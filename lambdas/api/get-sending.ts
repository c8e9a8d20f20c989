// GET /sending (operator): handler --> the guard's record and window (DynamoDB) + SES's sending state
import { sendingControlsFromEnv } from '../core/adapters';
import { apiHandler, json } from '../core/http';
import { type SendingControlsDependencies, sendingView } from '../core/sending/sending-controls';

export const makeGetSending = (deps: SendingControlsDependencies) =>
  apiHandler(async () => json(200, await sendingView(deps)));

export const handler = makeGetSending(sendingControlsFromEnv());
