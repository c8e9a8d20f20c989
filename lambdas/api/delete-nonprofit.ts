// DELETE /nonprofits/{email}: handler --> nonprofit repository (DynamoDB)

import { auditTrailFromEnv, nonprofitsFromEnv } from '../core/adapters';
import { apiHandler, callerActor, noContent, parsePathParameter } from '../core/http';
import { storedEmailAddress } from '../core/nonprofits/nonprofit';
import type { NonprofitRepository } from '../core/nonprofits/repository';

export const makeDeleteNonprofit = ({ nonprofits }: { nonprofits: NonprofitRepository }) =>
  apiHandler(async (event) => {
    const email = parsePathParameter(event, 'email', storedEmailAddress);
    await nonprofits.delete(email, callerActor(event));
    return noContent();
  });

export const handler = makeDeleteNonprofit({ nonprofits: nonprofitsFromEnv(auditTrailFromEnv()) });
