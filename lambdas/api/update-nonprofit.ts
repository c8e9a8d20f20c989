// PUT /nonprofits/{email}: handler --> nonprofit repository (DynamoDB)
import { apiHandler, json, parseJsonBody, parsePathParameter } from '../core/http';
import { emailAddress, nonprofitDetails } from '../core/nonprofits/nonprofit';
import { type NonprofitDependencies, nonprofitDependenciesFromEnv } from './nonprofits-dependencies';

export const makeUpdateNonprofit = ({ nonprofits }: NonprofitDependencies) =>
  apiHandler(async (event) => {
    const email = parsePathParameter(event, 'email', emailAddress);
    const details = parseJsonBody(event, nonprofitDetails);
    return json(200, await nonprofits.update(email, details));
  });

export const handler = makeUpdateNonprofit(nonprofitDependenciesFromEnv());
