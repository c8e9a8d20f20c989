// PUT /nonprofits/{email}: handler --> nonprofit repository (DynamoDB)

import { auditTrailFromEnv, nonprofitsFromEnv } from '../core/adapters';
import { apiHandler, callerActor, json, parseJsonBody, parsePathParameter } from '../core/http';
import { emailAddress, nonprofitDetails } from '../core/nonprofits/nonprofit';
import type { NonprofitRepository } from '../core/nonprofits/repository';

export const makeUpdateNonprofit = ({ nonprofits }: { nonprofits: NonprofitRepository }) =>
  apiHandler(async (event) => {
    const email = parsePathParameter(event, 'email', emailAddress);
    const details = parseJsonBody(event, nonprofitDetails);
    return json(200, await nonprofits.update(email, details, callerActor(event)));
  });

export const handler = makeUpdateNonprofit({ nonprofits: nonprofitsFromEnv(auditTrailFromEnv()) });
