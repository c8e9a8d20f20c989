// DELETE /nonprofits/{email}: handler --> nonprofit repository (DynamoDB)

import { nonprofitsFromEnv } from '../core/adapters';
import { apiHandler, noContent, parsePathParameter } from '../core/http';
import { emailAddress } from '../core/nonprofits/nonprofit';
import type { NonprofitRepository } from '../core/nonprofits/repository';

export const makeDeleteNonprofit = ({ nonprofits }: { nonprofits: NonprofitRepository }) =>
  apiHandler(async (event) => {
    const email = parsePathParameter(event, 'email', emailAddress);
    await nonprofits.delete(email);
    return noContent();
  });

export const handler = makeDeleteNonprofit({ nonprofits: nonprofitsFromEnv() });
