// GET /nonprofits/{email}: handler --> nonprofit repository (DynamoDB)

import { nonprofitsFromEnv } from '../core/adapters';
import { NotFoundError } from '../core/errors';
import { apiHandler, json, parsePathParameter } from '../core/http';
import { storedEmailAddress } from '../core/nonprofits/nonprofit';
import type { NonprofitRepository } from '../core/nonprofits/repository';

export const makeGetNonprofit = ({ nonprofits }: { nonprofits: NonprofitRepository }) =>
  apiHandler(async (event) => {
    const email = parsePathParameter(event, 'email', storedEmailAddress);
    const nonprofit = await nonprofits.get(email);
    if (!nonprofit) throw new NotFoundError(`Nonprofit with email ${email} not found.`);
    return json(200, nonprofit);
  });

export const handler = makeGetNonprofit({ nonprofits: nonprofitsFromEnv() });
