// GET /openapi.json (no API key): the checked-in contract, bundled into the function
import contract from '../../openapi.json';
import { apiHandler, json } from '../core/http';

/** Serves openapi.json as it was checked in (a test keeps it equal to what `npm run openapi` writes). */
export const handler = apiHandler(async () =>
  json(200, contract, { 'cache-control': 'public, max-age=300' }),
);
