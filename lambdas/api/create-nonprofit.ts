// POST /nonprofits: handler --> nonprofit repository (DynamoDB)

import { auditTrailFromEnv, nonprofitsFromEnv } from '../core/adapters';
import { apiHandler, callerActor, json, parseJsonBody } from '../core/http';
import { newNonprofit } from '../core/nonprofits/nonprofit';
import type { NonprofitRepository } from '../core/nonprofits/repository';

export const makeCreateNonprofit = ({ nonprofits }: { nonprofits: NonprofitRepository }) =>
  apiHandler(async (event) => {
    const input = parseJsonBody(event, newNonprofit);
    const created = await nonprofits.create(input, callerActor(event));
    return json(201, created, { location: `/nonprofits/${encodeURIComponent(created.email)}` });
  });

export const handler = makeCreateNonprofit({ nonprofits: nonprofitsFromEnv(auditTrailFromEnv()) });
