import {
  APIGatewayClient,
  BadRequestException,
  GetAccountCommand,
  UpdateAccountCommand,
} from '@aws-sdk/client-api-gateway';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { ensureAccountLogRole } from '../../../lambdas/core/deploy/api-gateway-account';

const apiGateway = mockClient(APIGatewayClient);
const client = new APIGatewayClient({ region: 'us-east-1' });
const ROLE = 'arn:aws:iam::123456789012:role/NonprofitMailer-AccountLogRole';
const notYet = () =>
  new BadRequestException({
    message: 'The role ARN does not have required permissions set to API Gateway',
    $metadata: {},
  });

beforeEach(() => apiGateway.reset());

/** Every role the account names exists; earlier versions' role was `NonprofitMailer-ApiRestApiCloudWatchRole…`. */
const EXISTS = { exists: async () => true, replacedNamePrefix: 'NonprofitMailer-ApiRestApiCloudWatchRole' };

describe("API Gateway's account logging role", () => {
  it('keeps a role the account already has: another API may log with it', async () => {
    apiGateway.on(GetAccountCommand).resolves({ cloudwatchRoleArn: 'arn:aws:iam::123456789012:role/Theirs' });
    expect(await ensureAccountLogRole(client, ROLE, EXISTS)).toBe('kept');
    expect(apiGateway.commandCalls(UpdateAccountCommand)).toHaveLength(0);
  });

  it('replaces a role that no longer exists (no API of the account logs with it), and the role earlier versions set', async () => {
    apiGateway.on(GetAccountCommand).resolves({ cloudwatchRoleArn: 'arn:aws:iam::123456789012:role/Gone' });
    expect(await ensureAccountLogRole(client, ROLE, { exists: async () => false })).toBe('set');
    apiGateway.reset();
    apiGateway.on(GetAccountCommand).resolves({
      cloudwatchRoleArn:
        'arn:aws:iam::123456789012:role/NonprofitMailer-ApiRestApiCloudWatchRole1A2B3C4D-AbC',
    });
    // It still exists as this runs; the upgrade's cleanup deletes it right after.
    expect(await ensureAccountLogRole(client, ROLE, EXISTS)).toBe('set');
    expect(apiGateway.commandCalls(UpdateAccountCommand)).toHaveLength(1);
  });

  it("sets the stack's role when the account has none", async () => {
    apiGateway.on(GetAccountCommand).resolves({});
    expect(await ensureAccountLogRole(client, ROLE, EXISTS)).toBe('set');
    expect(apiGateway.commandCalls(UpdateAccountCommand)[0]?.args[0].input).toEqual({
      patchOperations: [{ op: 'replace', path: '/cloudwatchRoleArn', value: ROLE }],
    });
  });

  it('tries again while IAM has not made the new role usable, then gives up with the refusal', async () => {
    const waits: number[] = [];
    const sleep = async (ms: number) => {
      waits.push(ms);
    };
    apiGateway.on(GetAccountCommand).resolves({});
    apiGateway.on(UpdateAccountCommand).rejectsOnce(notYet()).rejectsOnce(notYet()).resolves({});
    expect(await ensureAccountLogRole(client, ROLE, EXISTS, { retryDelaysMs: [1, 2, 3], sleep })).toBe('set');
    expect(waits).toEqual([1, 2]);

    apiGateway.on(UpdateAccountCommand).rejects(notYet());
    await expect(ensureAccountLogRole(client, ROLE, EXISTS, { retryDelaysMs: [1], sleep })).rejects.toThrow(
      /does not have required permissions/,
    );
  });

  it('does not retry any other refusal', async () => {
    apiGateway.on(GetAccountCommand).resolves({});
    apiGateway
      .on(UpdateAccountCommand)
      .rejects(new BadRequestException({ message: 'Invalid ARN', $metadata: {} }));
    await expect(ensureAccountLogRole(client, ROLE, EXISTS, { retryDelaysMs: [1, 2] })).rejects.toThrow(
      'Invalid ARN',
    );
    expect(apiGateway.commandCalls(UpdateAccountCommand)).toHaveLength(1);
  });
});
