import {
  DescribeSecretCommand,
  GetRandomPasswordCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';

/** What Secrets Manager invokes a rotation function with, once per step. */
export interface RotationEvent {
  SecretId: string;
  /** The id of the version being made: the same in all four steps of one rotation. */
  ClientRequestToken: string;
  Step: 'createSecret' | 'setSecret' | 'testSecret' | 'finishSecret';
}

/** As the stack's secret is generated at deploy: 64 letters and digits. */
const LENGTH = 64;

const isNotFound = (error: unknown) => (error as { name?: unknown }).name === 'ResourceNotFoundException';

/**
 * One step of rotating the unsubscribe link secret (Secrets Manager's four-step protocol for a
 * rotation function). Nothing outside Secrets Manager holds the value: signers and verifiers read
 * it from there. So the new version is made (createSecret), checked (testSecret) and made current
 * (finishSecret), which also stages the version it replaces AWSPREVIOUS, under which links already
 * sent keep working until the next rotation. Each step may run again after a failure or a retry,
 * and does nothing twice.
 */
export async function rotateLinkSecret(client: SecretsManagerClient, event: RotationEvent): Promise<string> {
  const { SecretId, ClientRequestToken: versionId, Step } = event;
  const described = await client.send(new DescribeSecretCommand({ SecretId }));
  if (!described.RotationEnabled) throw new Error(`Rotation is not enabled for ${SecretId}`);
  const stages = described.VersionIdsToStages ?? {};
  const staged = stages[versionId];
  if (!staged) throw new Error(`Version ${versionId} of ${SecretId} has no stage: not this rotation's`);
  if (staged.includes('AWSCURRENT')) return 'already current';
  if (!staged.includes('AWSPENDING'))
    throw new Error(`Version ${versionId} of ${SecretId} is not AWSPENDING`);

  switch (Step) {
    case 'createSecret': {
      // The current version must exist: a rotation never starts a secret from nothing.
      await client.send(new GetSecretValueCommand({ SecretId, VersionStage: 'AWSCURRENT' }));
      try {
        await client.send(
          new GetSecretValueCommand({ SecretId, VersionId: versionId, VersionStage: 'AWSPENDING' }),
        );
        return 'pending version exists';
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      const { RandomPassword } = await client.send(
        new GetRandomPasswordCommand({ PasswordLength: LENGTH, ExcludePunctuation: true }),
      );
      if (!RandomPassword || RandomPassword.length < LENGTH)
        throw new Error('Secrets Manager gave no password');
      // The version id makes the put idempotent: a retried step finds its own version.
      await client.send(
        new PutSecretValueCommand({
          SecretId,
          ClientRequestToken: versionId,
          SecretString: RandomPassword,
          VersionStages: ['AWSPENDING'],
        }),
      );
      return 'created';
    }
    case 'setSecret':
      // No database or service holds this secret: there is nothing to set.
      return 'nothing to set';
    case 'testSecret': {
      const { SecretString } = await client.send(
        new GetSecretValueCommand({ SecretId, VersionId: versionId, VersionStage: 'AWSPENDING' }),
      );
      if (!SecretString || SecretString.length < 32)
        throw new Error(`The pending version of ${SecretId} is missing or too short`);
      return 'tested';
    }
    case 'finishSecret': {
      const current = Object.entries(stages).find(([, labels]) => labels.includes('AWSCURRENT'))?.[0];
      await client.send(
        new UpdateSecretVersionStageCommand({
          SecretId,
          VersionStage: 'AWSCURRENT',
          MoveToVersionId: versionId,
          ...(current ? { RemoveFromVersionId: current } : {}),
        }),
      );
      return 'finished';
    }
    default:
      throw new Error(`Unknown rotation step ${String(Step)}`);
  }
}
