// GET /suppressions/{email}: handler --> suppression list (DynamoDB) + address key (Secrets Manager)
import { addressKeysFromEnv, suppressionsFromEnv } from '../core/adapters';
import { NotFoundError } from '../core/errors';
import { apiHandler, json, parsePathParameter } from '../core/http';
import { storedEmailAddress } from '../core/nonprofits/nonprofit';
import type { SuppressionList } from '../core/suppressions/repository';

export const makeGetSuppression = ({ suppressions }: { suppressions: Pick<SuppressionList, 'lookUp'> }) =>
  apiHandler(async (event) => {
    const email = parsePathParameter(event, 'email', storedEmailAddress);
    const found = await suppressions.lookUp(email);
    if (!found) throw new NotFoundError(`The address ${email} is not suppressed.`);
    return json(200, found);
  });

// The key tells an erased address (suppressed under its key alone) from one never suppressed.
export const handler = makeGetSuppression({
  suppressions: suppressionsFromEnv(undefined, undefined, addressKeysFromEnv()),
});
