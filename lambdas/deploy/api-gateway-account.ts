// A CloudFormation custom resource (Custom::ApiGatewayAccountLogRole): gives the account's API
// Gateway logging setting this stack's role only when it has none; never changes or removes it.
// CloudFormation --> handler --> API Gateway GetAccount / UpdateAccount --> the answer PUT to CloudFormation
import { request } from 'node:https';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { GetRoleCommand, IAMClient, NoSuchEntityException } from '@aws-sdk/client-iam';
import { ensureAccountLogRole } from '../core/deploy/api-gateway-account';

interface CustomResourceEvent {
  RequestType: 'Create' | 'Update' | 'Delete';
  ResponseURL: string;
  StackId: string;
  RequestId: string;
  LogicalResourceId: string;
  PhysicalResourceId?: string;
  ResourceProperties: { RoleArn?: string; ReplacedRoleNamePrefix?: string };
}

const apiGateway = new APIGatewayClient({});
const iam = new IAMClient({});

async function roleExists(roleArn: string): Promise<boolean> {
  try {
    await iam.send(new GetRoleCommand({ RoleName: roleArn.slice(roleArn.lastIndexOf('/') + 1) }));
    return true;
  } catch (error) {
    if (error instanceof NoSuchEntityException) return false;
    throw error;
  }
}
const PHYSICAL_ID = 'api-gateway-account-log-role';

export async function handler(event: CustomResourceEvent): Promise<void> {
  let answer: { Status: 'SUCCESS' | 'FAILED'; Reason?: string; Data?: Record<string, string> };
  try {
    // A delete leaves the setting as it is: other APIs of the account may log with that role now.
    const roleArn = event.ResourceProperties.RoleArn;
    if (event.RequestType === 'Delete') answer = { Status: 'SUCCESS', Data: { Outcome: 'kept' } };
    else if (!roleArn) answer = { Status: 'FAILED', Reason: 'The resource has no RoleArn property' };
    else {
      const outcome = await ensureAccountLogRole(apiGateway, roleArn, {
        exists: roleExists,
        replacedNamePrefix: event.ResourceProperties.ReplacedRoleNamePrefix,
      });
      answer = { Status: 'SUCCESS', Data: { Outcome: outcome } };
    }
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
        response.on('end', () =>
          (response.statusCode ?? 0) < 300
            ? resolve()
            : reject(new Error(`CloudFormation refused the answer: ${response.statusCode}`)),
        );
      },
    );
    put.on('error', reject);
    // CloudFormation would wait an hour for an answer that never came: fail this invocation instead.
    put.setTimeout(30_000, () => put.destroy(new Error('No answer from CloudFormation within 30 s')));
    put.end(payload);
  });
}
