import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  RotateSecretCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { afterEach, describe, expect, it } from 'vitest';
import { type RotationEvent, rotateLinkSecret } from '../../lambdas/core/suppressions/link-secret-rotation';
import { LOCAL_CREDENTIALS } from '../../local/dynamodb';
import type { InvokeResult } from '../../local/functions';
import { type LocalSecrets, startLocalSecrets } from '../../local/secrets';
import { type CfnTemplate, IntrinsicResolver, LOCAL_REGION } from '../../local/template';

/** A secret with a rotation schedule, as the stack's link secret, and one without. */
const TEMPLATE: CfnTemplate = {
  Resources: {
    LinkSecret: {
      Type: 'AWS::SecretsManager::Secret',
      Properties: { GenerateSecretString: { PasswordLength: 64, ExcludePunctuation: true } },
    },
    LinkSecretRotation: {
      Type: 'AWS::SecretsManager::RotationSchedule',
      Properties: {
        SecretId: { Ref: 'LinkSecret' },
        RotationLambdaARN: { 'Fn::GetAtt': ['RotateFn', 'Arn'] },
        RotationRules: { ScheduleExpression: 'rate(90 days)' },
      },
    },
    RotateFn: { Type: 'AWS::Lambda::Function', Properties: {} },
    AddressKey: { Type: 'AWS::SecretsManager::Secret', Properties: { SecretString: 'a'.repeat(64) } },
  },
};

const dirs: string[] = [];
const running: LocalSecrets[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((secrets) => secrets.stop()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * The stand-in, whose rotation function is the real rotation code with an SDK client of its own
 * pointed back at it (as the runtime's worker thread would be); `failAt` makes one step throw.
 */
async function start(options: { file?: string; failAt?: RotationEvent['Step'] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'local-secrets-'));
  dirs.push(dir);
  const file = options.file ?? join(dir, 'secrets.json');
  let client: SecretsManagerClient | undefined;
  const invoked: RotationEvent[] = [];
  const invoke = async (logicalId: string, event: unknown): Promise<InvokeResult> => {
    expect(logicalId).toBe('RotateFn');
    const step = event as RotationEvent;
    invoked.push(step);
    if (step.Step === options.failAt)
      return { ok: false, error: { errorType: 'Error', errorMessage: `${step.Step} broke` } };
    return { ok: true, value: await rotateLinkSecret(client as SecretsManagerClient, step) };
  };
  const secrets = await startLocalSecrets({
    template: TEMPLATE,
    resolver: new IntrinsicResolver(TEMPLATE),
    file,
    invoke,
  });
  running.push(secrets);
  client = new SecretsManagerClient({
    endpoint: secrets.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  const value = async (input: { VersionStage?: string; VersionId?: string }) =>
    (
      await (client as SecretsManagerClient).send(
        new GetSecretValueCommand({ SecretId: 'LinkSecret', ...input }),
      )
    ).SecretString;
  return { secrets, client, file, invoked, value };
}

describe('the local Secrets Manager', () => {
  it('generates each secret once, as the template asks, and keeps it across restarts (mode 0600)', async () => {
    const first = await start();
    const value = await first.value({});
    expect(value).toMatch(/^[A-Za-z0-9]{64}$/);
    expect(statSync(first.file).mode & 0o777).toBe(0o600);
    expect(first.secrets.rotatable).toEqual(['LinkSecret']);
    const again = await start({ file: first.file });
    expect(await again.value({ VersionStage: 'AWSCURRENT' })).toBe(value);
  });

  it('reads a value kept by an earlier version of the runtime (a bare string) as the current version', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'local-secrets-'));
    dirs.push(dir);
    const file = join(dir, 'secrets.json');
    writeFileSync(file, JSON.stringify({ LinkSecret: 'k'.repeat(64) }));
    const { value } = await start({ file });
    expect(await value({})).toBe('k'.repeat(64));
    await expect(value({ VersionStage: 'AWSPREVIOUS' })).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
  });

  it('rotates by running the rotation function through its four steps: the new version current, the old one previous', async () => {
    const { client, value, invoked, file } = await start();
    const before = await value({});
    const { VersionId } = await client.send(new RotateSecretCommand({ SecretId: 'LinkSecret' }));
    expect(invoked.map((event) => event.Step)).toEqual([
      'createSecret',
      'setSecret',
      'testSecret',
      'finishSecret',
    ]);
    expect(new Set(invoked.map((event) => event.ClientRequestToken))).toEqual(new Set([VersionId]));
    expect(await value({ VersionStage: 'AWSPREVIOUS' })).toBe(before);
    const after = await value({});
    expect(after).not.toBe(before);
    expect(await value({ VersionId })).toBe(after);
    const described = await client.send(new DescribeSecretCommand({ SecretId: 'LinkSecret' }));
    expect(described).toMatchObject({ RotationEnabled: true, RotationRules: { AutomaticallyAfterDays: 90 } });
    expect(Object.values(described.VersionIdsToStages ?? {}).sort()).toEqual([
      ['AWSCURRENT'],
      ['AWSPREVIOUS'],
    ]);
    // A second rotation retires the first value: only two versions keep a label.
    await client.send(new RotateSecretCommand({ SecretId: 'LinkSecret' }));
    expect(await value({ VersionStage: 'AWSPREVIOUS' })).toBe(after);
    expect(readFileSync(file, 'utf8')).not.toContain(before);
  });

  it('keeps a failed rotation pending, the current version in use, and finishes it on the next rotation', async () => {
    const failing = await start({ failAt: 'testSecret' });
    const before = await failing.value({});
    await expect(failing.client.send(new RotateSecretCommand({ SecretId: 'LinkSecret' }))).rejects.toThrow(
      /Rotation failed at testSecret: Error: testSecret broke/,
    );
    expect(await failing.value({})).toBe(before);
    const pendingId = failing.invoked[0]?.ClientRequestToken;
    const pending = await failing.value({ VersionStage: 'AWSPENDING' });
    // The runtime restarted with a working function: the same pending version is finished.
    const working = await start({ file: failing.file });
    const { VersionId } = await working.client.send(new RotateSecretCommand({ SecretId: 'LinkSecret' }));
    expect(VersionId).toBe(pendingId);
    expect(await working.value({})).toBe(pending);
    expect(await working.value({ VersionStage: 'AWSPREVIOUS' })).toBe(before);
  });

  it('answers as Secrets Manager does to what it refuses', async () => {
    const { client } = await start();
    await expect(client.send(new RotateSecretCommand({ SecretId: 'AddressKey' }))).rejects.toMatchObject({
      name: 'InvalidRequestException',
    });
    await expect(client.send(new GetSecretValueCommand({ SecretId: 'Nope' }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    const { VersionId } = await client.send(
      new PutSecretValueCommand({
        SecretId: 'LinkSecret',
        ClientRequestToken: 'v-extra',
        SecretString: 'x'.repeat(64),
        VersionStages: ['EXTRA'],
      }),
    );
    // The same version id with another value: refused; moving a label held elsewhere needs its holder named.
    await expect(
      client.send(
        new PutSecretValueCommand({
          SecretId: 'LinkSecret',
          ClientRequestToken: 'v-extra',
          SecretString: 'y'.repeat(64),
        }),
      ),
    ).rejects.toMatchObject({ name: 'ResourceExistsException' });
    await expect(
      client.send(
        new UpdateSecretVersionStageCommand({
          SecretId: 'LinkSecret',
          VersionStage: 'AWSCURRENT',
          MoveToVersionId: VersionId,
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidParameterException' });
  });
});
