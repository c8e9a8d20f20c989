// POST /nonprofits: handler --> nonprofit repository (DynamoDB)

import {
  addressKeysFromEnv,
  auditTrailFromEnv,
  nonprofitsFromEnv,
  suppressionsFromEnv,
} from '../core/adapters';
import { apiHandler, callerActor, json, parseJsonBody } from '../core/http';
import { newNonprofit } from '../core/nonprofits/nonprofit';
import type { NonprofitRepository } from '../core/nonprofits/repository';
import type { SuppressionList } from '../core/suppressions/repository';

export interface CreateNonprofitDependencies {
  nonprofits: NonprofitRepository;
  /** An address erased before is suppressed again before its entry is made (see `rememberErased`). */
  erased: Pick<SuppressionList, 'rememberErased'>;
}

export const makeCreateNonprofit = ({ nonprofits, erased }: CreateNonprofitDependencies) =>
  apiHandler(async (event) => {
    const input = parseJsonBody(event, newNonprofit);
    await erased.rememberErased([input.email]);
    const created = await nonprofits.create(input, callerActor(event));
    return json(201, created, { location: `/nonprofits/${encodeURIComponent(created.email)}` });
  });

const audit = auditTrailFromEnv();

export const handler = makeCreateNonprofit({
  nonprofits: nonprofitsFromEnv(audit),
  erased: suppressionsFromEnv(undefined, audit, addressKeysFromEnv()),
});
