import type { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { GetAccountCommand, UpdateAccountCommand } from '@aws-sdk/client-api-gateway';

/**
 * API Gateway writes a stage's logs with one role per account and region (its "CloudWatch log role
 * ARN" setting), shared by every API there. Overwriting it would take another API's logging role
 * away, and deleting it with a stack would break logging for all of them. So the setting is given
 * this stack's role only when the account has none, and is never changed or removed afterwards.
 */
export type AccountRoleOutcome = 'kept' | 'set';

/** What the setting's role must be checked against before it is kept. */
export interface CurrentRoleCheck {
  /** Whether the role still exists: a setting naming a deleted role logs nothing for any API. */
  exists(roleArn: string): Promise<boolean>;
  /**
   * The name of the role earlier versions of this stack set (CDK's `<stack>-ApiRestApiCloudWatchRole…`),
   * deleted by the upgrade's cleanup right after this runs: replaced, not kept.
   */
  replacedNamePrefix?: string | undefined;
}

export interface AccountRoleOptions {
  /** Waits between tries: a role just created takes seconds before API Gateway may assume it. */
  retryDelaysMs?: readonly number[];
  sleep?: (ms: number) => Promise<void>;
}

const IAM_PROPAGATION_DELAYS_MS = [2_000, 4_000, 8_000, 16_000, 30_000];

export async function ensureAccountLogRole(
  apiGateway: Pick<APIGatewayClient, 'send'>,
  roleArn: string,
  current: CurrentRoleCheck,
  { retryDelaysMs = IAM_PROPAGATION_DELAYS_MS, sleep = defaultSleep }: AccountRoleOptions = {},
): Promise<AccountRoleOutcome> {
  const { cloudwatchRoleArn } = await apiGateway.send(new GetAccountCommand({}));
  if (cloudwatchRoleArn && cloudwatchRoleArn !== roleArn) {
    const name = cloudwatchRoleArn.slice(cloudwatchRoleArn.lastIndexOf('/') + 1);
    const replaced = current.replacedNamePrefix !== undefined && name.startsWith(current.replacedNamePrefix);
    if (!replaced && (await current.exists(cloudwatchRoleArn))) return 'kept';
  } else if (cloudwatchRoleArn) return 'kept';
  for (let attempt = 0; ; attempt++) {
    try {
      await apiGateway.send(
        new UpdateAccountCommand({
          patchOperations: [{ op: 'replace', path: '/cloudwatchRoleArn', value: roleArn }],
        }),
      );
      return 'set';
    } catch (error) {
      // "The role ARN does not have required permissions set to API Gateway": IAM has not told API
      // Gateway of the new role yet. Anything else is a real refusal.
      const delay = retryDelaysMs[attempt];
      if (!isRoleNotYetUsable(error) || delay === undefined) throw error;
      await sleep(delay);
    }
  }
}

const isRoleNotYetUsable = (error: unknown) =>
  (error as { name?: string }).name === 'BadRequestException' &&
  /role ARN does not have required permissions/i.test((error as Error).message);

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
