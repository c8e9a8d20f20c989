import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import type { InvokeResult } from '../../local/functions';

/** A REST API proxy event as API Gateway sends it, with only what a test cares about to fill in. */
export function apiEvent(overrides: Partial<APIGatewayProxyEvent> = {}): APIGatewayProxyEvent {
  return {
    resource: '/',
    path: '/',
    httpMethod: 'GET',
    headers: {},
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: {
      identity: { apiKeyId: 'key-1', apiKey: 'value-1', sourceIp: '127.0.0.1' },
    } as APIGatewayProxyEvent['requestContext'],
    ...overrides,
  };
}

export const lambdaContext = {
  awsRequestId: 'request-1',
  getRemainingTimeInMillis: () => 10_000,
} as unknown as Context;

/** Runs a handler as the local runtime's event sources see an invocation: its value, or its error. */
export async function asInvocation(run: () => Promise<unknown>): Promise<InvokeResult> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    const failure = error instanceof Error ? error : new Error(String(error));
    return { ok: false, error: { errorType: failure.name, errorMessage: failure.message } };
  }
}

export function jsonBody(result: { body: string }): Record<string, unknown> {
  return JSON.parse(result.body) as Record<string, unknown>;
}
