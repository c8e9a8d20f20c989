import { createHmac } from 'node:crypto';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  RotateSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { UnsubscribeClaim } from '../../lambdas/core/suppressions/unsubscribe-token';
import { LOCAL_CREDENTIALS } from '../../local/dynamodb';
import { LOCAL_REGION } from '../../local/template';

/**
 * An unsubscribe token as version 1 made them (until December 2026: the claim in clear, signed
 * with HMAC-SHA256), written out here from that format: links in emails sent before version 2
 * must keep working, and nothing in the functions makes one any more.
 */
export function signVersion1Token(secret: string, claim: UnsubscribeClaim): string {
  const body = Buffer.from(
    JSON.stringify({ v: 1, e: claim.email, j: claim.jobId, k: claim.apiKeyId, r: claim.recipient }),
    'utf8',
  ).toString('base64url');
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

/** The runtime's link secret through its local Secrets Manager: its versions, and a rotation. */
export function localLinkSecret(runtime: { secretsEndpoint: string; rotatableSecrets: string[] }) {
  const [secretId] = runtime.rotatableSecrets;
  if (!secretId) throw new Error('The runtime has no rotating secret');
  const client = new SecretsManagerClient({
    endpoint: runtime.secretsEndpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  const value = async (stage: 'AWSCURRENT' | 'AWSPREVIOUS') =>
    (await client.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: stage })))
      .SecretString ?? '';
  return {
    current: () => value('AWSCURRENT'),
    previous: () => value('AWSPREVIOUS'),
    /** As Secrets Manager's schedule would: the template's rotation function, through its four steps. */
    rotate: () => client.send(new RotateSecretCommand({ SecretId: secretId })),
    stages: async () =>
      (await client.send(new DescribeSecretCommand({ SecretId: secretId }))).VersionIdsToStages ?? {},
  };
}
