// GET /suppressions/{email}: handler --> suppression list (DynamoDB)
import { suppressionsFromEnv } from '../core/adapters';
import { NotFoundError } from '../core/errors';
import { apiHandler, json, parsePathParameter } from '../core/http';
import { emailAddress } from '../core/nonprofits/nonprofit';
import type { SuppressionList } from '../core/suppressions/repository';

export const makeGetSuppression = ({ suppressions }: { suppressions: SuppressionList }) =>
  apiHandler(async (event) => {
    const email = parsePathParameter(event, 'email', emailAddress);
    const found = await suppressions.get(email);
    if (!found) throw new NotFoundError(`The address ${email} is not suppressed.`);
    return json(200, found);
  });

export const handler = makeGetSuppression({ suppressions: suppressionsFromEnv() });
