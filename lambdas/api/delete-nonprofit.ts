// DELETE /nonprofits/{email}: handler --> nonprofit repository (DynamoDB)
import { apiHandler, noContent, parsePathParameter } from '../core/http';
import { emailAddress } from '../core/nonprofits/nonprofit';
import { type NonprofitDependencies, nonprofitDependenciesFromEnv } from './nonprofits-dependencies';

export const makeDeleteNonprofit = ({ nonprofits }: NonprofitDependencies) =>
  apiHandler(async (event) => {
    const email = parsePathParameter(event, 'email', emailAddress);
    await nonprofits.delete(email);
    return noContent();
  });

export const handler = makeDeleteNonprofit(nonprofitDependenciesFromEnv());
