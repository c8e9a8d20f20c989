import {
  DescribeSecretCommand,
  GetRandomPasswordCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  type RotationEvent,
  rotateLinkSecret,
} from '../../../../lambdas/core/suppressions/link-secret-rotation';
import { SecretsManagerSigningSecret } from '../../../../lambdas/core/suppressions/signing-secret';

const secretsManager = mockClient(SecretsManagerClient);
const client = new SecretsManagerClient({ region: 'us-east-1' });
const SECRET_ID = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:LinkSecret-AbCdEf';
const CURRENT = 'c'.repeat(64);
const PREVIOUS = 'p'.repeat(64);
const notFound = (message: string) => new ResourceNotFoundException({ message, $metadata: {} });

beforeEach(() => secretsManager.reset());

describe('the signing secret read from Secrets Manager', () => {
  const clock = { now: 0 };
  const source = () => new SecretsManagerSigningSecret(SECRET_ID, client, { now: () => clock.now });
  beforeEach(() => {
    clock.now = 1_000_000;
    secretsManager
      .on(GetSecretValueCommand, { VersionStage: 'AWSCURRENT' })
      .resolves({ SecretString: CURRENT });
    secretsManager
      .on(GetSecretValueCommand, { VersionStage: 'AWSPREVIOUS' })
      .resolves({ SecretString: PREVIOUS });
  });

  it('holds the current and previous versions, read together and kept five minutes', async () => {
    const secret = source();
    expect(await secret.versions()).toEqual({ current: CURRENT, previous: PREVIOUS });
    clock.now += 299_000;
    await secret.versions();
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(2);
    clock.now += 2_000;
    await secret.versions();
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(4);
  });

  it('has no previous version before the first rotation', async () => {
    secretsManager
      .on(GetSecretValueCommand, { VersionStage: 'AWSPREVIOUS' })
      .rejects(
        notFound("Secrets Manager can't find the specified secret value for staging label: AWSPREVIOUS"),
      );
    expect(await source().versions()).toEqual({ current: CURRENT });
  });

  it('reads afresh when asked, at most once a second however often it is asked', async () => {
    const secret = source();
    await secret.versions();
    clock.now += 900;
    await secret.versions({ fresh: true });
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(2);
    clock.now += 200;
    await Promise.all([secret.versions({ fresh: true }), secret.versions({ fresh: true })]);
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(4);
  });

  it('goes on with the versions it read when Secrets Manager fails, and asks again five seconds later', async () => {
    const secret = source();
    await secret.versions();
    secretsManager.on(GetSecretValueCommand).rejects(new Error('Rate exceeded'));
    clock.now += 2_000;
    // A token naming an unknown key id asks afresh: judged under the versions known, not a 500.
    expect(await secret.versions({ fresh: true })).toEqual({ current: CURRENT, previous: PREVIOUS });
    expect(await secret.versions({ fresh: true })).toEqual({ current: CURRENT, previous: PREVIOUS });
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(3);
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: 'n'.repeat(64) });
    clock.now += 4_000;
    await secret.versions();
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(3);
    clock.now += 2_000;
    expect(await secret.versions()).toEqual({ current: 'n'.repeat(64), previous: 'n'.repeat(64) });
  });

  it('fails, and keeps nothing, when the current version is missing or too short', async () => {
    const values = ['short', CURRENT];
    secretsManager
      .on(GetSecretValueCommand, { VersionStage: 'AWSCURRENT' })
      .callsFake(async () => ({ SecretString: values.shift() }));
    const secret = source();
    await expect(secret.versions()).rejects.toThrow(/missing or too short/);
    expect(await secret.versions()).toEqual({ current: CURRENT, previous: PREVIOUS });
  });
});

describe('rotating the link secret', () => {
  const event = (Step: RotationEvent['Step']): RotationEvent => ({
    SecretId: SECRET_ID,
    ClientRequestToken: 'version-2',
    Step,
  });
  const describeWith = (stages: Record<string, string[]>, RotationEnabled = true) =>
    secretsManager.on(DescribeSecretCommand).resolves({ RotationEnabled, VersionIdsToStages: stages });
  const pending = { 'version-1': ['AWSCURRENT'], 'version-2': ['AWSPENDING'] };

  it('creates the pending version with a generated value, under the rotation’s version id', async () => {
    describeWith(pending);
    secretsManager
      .on(GetSecretValueCommand, { VersionStage: 'AWSCURRENT' })
      .resolves({ SecretString: CURRENT });
    secretsManager
      .on(GetSecretValueCommand, { VersionStage: 'AWSPENDING' })
      .rejects(notFound('no such version'));
    secretsManager.on(GetRandomPasswordCommand).resolves({ RandomPassword: 'n'.repeat(64) });
    expect(await rotateLinkSecret(client, event('createSecret'))).toBe('created');
    expect(secretsManager.commandCalls(GetRandomPasswordCommand)[0]?.args[0].input).toEqual({
      PasswordLength: 64,
      ExcludePunctuation: true,
    });
    expect(secretsManager.commandCalls(PutSecretValueCommand)[0]?.args[0].input).toEqual({
      SecretId: SECRET_ID,
      ClientRequestToken: 'version-2',
      SecretString: 'n'.repeat(64),
      VersionStages: ['AWSPENDING'],
    });
  });

  it('does not make a second value when the step runs again', async () => {
    describeWith(pending);
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: 'n'.repeat(64) });
    expect(await rotateLinkSecret(client, event('createSecret'))).toBe('pending version exists');
    expect(secretsManager.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  it('refuses a pending value that is too short', async () => {
    describeWith(pending);
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: 'short' });
    await expect(rotateLinkSecret(client, event('testSecret'))).rejects.toThrow(/too short/);
  });

  it('makes the pending version current, taking the stage from the version that had it', async () => {
    describeWith(pending);
    expect(await rotateLinkSecret(client, event('setSecret'))).toBe('nothing to set');
    expect(await rotateLinkSecret(client, event('finishSecret'))).toBe('finished');
    expect(secretsManager.commandCalls(UpdateSecretVersionStageCommand)[0]?.args[0].input).toEqual({
      SecretId: SECRET_ID,
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: 'version-2',
      RemoveFromVersionId: 'version-1',
    });
  });

  it('does nothing for a version already current (a step run again after finishing)', async () => {
    describeWith({ 'version-1': ['AWSPREVIOUS'], 'version-2': ['AWSCURRENT'] });
    expect(await rotateLinkSecret(client, event('finishSecret'))).toBe('already current');
    expect(secretsManager.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
  });

  it('refuses a secret without rotation and a version that is not this rotation’s', async () => {
    describeWith(pending, false);
    await expect(rotateLinkSecret(client, event('createSecret'))).rejects.toThrow(/not enabled/);
    describeWith({ 'version-1': ['AWSCURRENT'] });
    await expect(rotateLinkSecret(client, event('createSecret'))).rejects.toThrow(/has no stage/);
    describeWith({ 'version-1': ['AWSCURRENT'], 'version-2': [] });
    await expect(rotateLinkSecret(client, event('createSecret'))).rejects.toThrow(
      /has no stage|not AWSPENDING/,
    );
    expect(secretsManager.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });
});
