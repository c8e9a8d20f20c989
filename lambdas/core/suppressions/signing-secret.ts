import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SigningSecret } from './unsubscribe-token';

/** Seconds a read secret is kept per execution environment: one Secrets Manager call per five minutes, not per email. */
const CACHE_SECONDS = 300;

/** The signing secret from Secrets Manager, read with Powertools Parameters and cached. */
export class SecretsManagerSigningSecret implements SigningSecret {
  private readonly provider: SecretsProvider;

  constructor(
    private readonly secretId: string,
    client?: SecretsManagerClient,
  ) {
    this.provider = new SecretsProvider(client ? { awsSdkV3Client: client } : {});
  }

  async get(): Promise<string> {
    const value = await this.provider.get(this.secretId, { maxAge: CACHE_SECONDS });
    if (typeof value !== 'string' || value.length < 32)
      throw new Error('The unsubscribe signing secret is missing or too short');
    return value;
  }
}
