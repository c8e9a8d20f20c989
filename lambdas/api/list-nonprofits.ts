// GET /nonprofits?domain=&limit=&cursor=: handler --> nonprofit repository (DynamoDB)
import { nonprofitsFromEnv } from '../core/adapters';
import { apiHandler, json, parseQuery } from '../core/http';
import { nonprofitListQuery } from '../core/nonprofits/nonprofit';
import type { NonprofitRepository } from '../core/nonprofits/repository';

export const makeListNonprofits = ({ nonprofits }: { nonprofits: NonprofitRepository }) =>
  apiHandler(async (event) => {
    const query = parseQuery(event, nonprofitListQuery);
    const page = await nonprofits.list(query);
    return json(200, { nonprofits: page.items, next_cursor: page.nextCursor });
  });

export const handler = makeListNonprofits({ nonprofits: nonprofitsFromEnv() });
