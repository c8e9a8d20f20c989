// A CloudFormation custom resource (Custom::ApiGatewayAccountLogRole): gives the account's API
// Gateway logging setting this stack's role only when it has none; never changes or removes it.
// CloudFormation --> handler --> API Gateway GetAccount / UpdateAccount --> the answer PUT to CloudFormation
import { request } from 'node:https';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { ensureAccountLogRole } from '../core/deploy/api-gateway-account';

interface CustomResourceEvent {
  RequestType: 'Create' | 'Update' | 'Delete';
  ResponseURL: string;
  StackId: string;
  RequestId: string;
  LogicalResourceId: string;
  PhysicalResourceId?: string;
  ResourceProperties: { RoleArn?: string };
}

const apiGateway = new APIGatewayClient({});
const PHYSICAL_ID = 'api-gateway-account-log-role';

export async function handler(event: CustomResourceEvent): Promise<void> {
  let answer: { Status: 'SUCCESS' | 'FAILED'; Reason?: string; Data?: Record<string, string> };
  try {
    // A delete leaves the setting as it is: other APIs of the account may log with that role now.
    const roleArn = event.ResourceProperties.RoleArn;
    if (event.RequestType === 'Delete') answer = { Status: 'SUCCESS', Data: { Outcome: 'kept' } };
    else if (!roleArn) answer = { Status: 'FAILED', Reason: 'The resource has no RoleArn property' };
    else answer = { Status: 'SUCCESS', Data: { Outcome: await ensureAccountLogRole(apiGateway, roleArn) } };
  } catch (error) {
    answer = { Status: 'FAILED', Reason: error instanceof Error ? error.message : String(error) };
  }
  console.log(
    JSON.stringify({ message: 'API Gateway account log role', request: event.RequestType, ...answer }),
  );
  await respond(event, {
    ...answer,
    PhysicalResourceId: event.PhysicalResourceId ?? PHYSICAL_ID,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
  });
}

/** CloudFormation waits for the answer at a pre-signed S3 URL, signed without a content type. */
function respond(event: CustomResourceEvent, body: Record<string, unknown>): Promise<void> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const put = request(
      event.ResponseURL,
      { method: 'PUT', headers: { 'content-type': '', 'content-length': Buffer.byteLength(payload) } },
      (response) => {
        response.resume();
        response.on('end', () => resolve());
      },
    );
    put.on('error', reject);
    put.end(payload);
  });
}
