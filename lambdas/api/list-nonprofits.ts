// GET /nonprofits?domain=&limit=&cursor=: handler --> nonprofit repository (DynamoDB)
import { z } from 'zod';
import { nonprofitsFromEnv } from '../core/adapters';
import { pageLimit } from '../core/cursor';
import { apiHandler, json, parseQuery } from '../core/http';
import { emailDomain } from '../core/nonprofits/nonprofit';
import type { NonprofitRepository } from '../core/nonprofits/repository';

const listQuery = z.strictObject({
  domain: emailDomain.optional(),
  limit: pageLimit(50, 100),
  cursor: z.string().min(1, 'Must not be empty').optional(),
});

export const makeListNonprofits = ({ nonprofits }: { nonprofits: NonprofitRepository }) =>
  apiHandler(async (event) => {
    const query = parseQuery(event, listQuery);
    const page = await nonprofits.list(query);
    return json(200, { nonprofits: page.items, next_cursor: page.nextCursor });
  });

export const handler = makeListNonprofits({ nonprofits: nonprofitsFromEnv() });
