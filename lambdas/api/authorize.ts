// API Gateway REQUEST authorizer: x-api-key --> the stack's keys (API Gateway GetApiKey, once per environment) --> Allow with the key's methods, or Deny naming the scope
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { ApiGatewayKeyValues } from '../core/auth/api-gateway-key-values';
import { authorizeRequest, KeyIndex } from '../core/auth/authorize';
import { logger } from '../core/observability/telemetry';
import { readSettings, SETTING } from '../core/settings';

export const makeAuthorize =
  (keys: Pick<KeyIndex, 'find'>) =>
  async (event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => {
    const result = await authorizeRequest(keys, event);
    // Which key asked for which route, and the answer; never the key's value.
    logger.info('Authorized', {
      route: `${event.requestContext.httpMethod} ${event.requestContext.resourcePath}`,
      principal: result.principalId,
      effect: result.policyDocument.Statement[0]?.Effect,
      ...(result.context?.message ? { reason: result.context.message } : {}),
    });
    return result;
  };

const { apiKeys } = readSettings({ apiKeys: SETTING.apiKeys });

export const handler = makeAuthorize(
  new KeyIndex(apiKeys, new ApiGatewayKeyValues(new APIGatewayClient({}))),
);
