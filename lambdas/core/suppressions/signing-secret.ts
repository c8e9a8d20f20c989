import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SecretVersions, SigningSecret } from './unsubscribe-token';

export interface SigningSecretOptions {
  /** How long read versions are used: one pair of Secrets Manager calls per five minutes, not per email. */
  maxAgeSeconds?: number;
  /** The least time between two reads: a flood of tokens with forged key ids reads at most this often. */
  minRefreshSeconds?: number;
  now?: () => number;
}

/**
 * The signing secret's AWSCURRENT and AWSPREVIOUS versions from Secrets Manager, read together and
 * cached per execution environment. (Not Powertools' provider: its cache is keyed by the secret's
 * name alone, whichever version was asked for, and it keeps no answer that was an error, such as
 * the "no AWSPREVIOUS yet" of a secret that has never rotated.)
 */
export class SecretsManagerSigningSecret implements SigningSecret {
  private readonly maxAgeMs: number;
  private readonly minRefreshMs: number;
  private readonly now: () => number;
  /** The read under way or done: a batch's emails wait for one read, not one each. */
  private read: { versions: Promise<SecretVersions>; at: number } | undefined;

  constructor(
    private readonly secretId: string,
    private readonly client: SecretsManagerClient = new SecretsManagerClient({}),
    { maxAgeSeconds = 300, minRefreshSeconds = 1, now = Date.now }: SigningSecretOptions = {},
  ) {
    this.maxAgeMs = maxAgeSeconds * 1000;
    this.minRefreshMs = minRefreshSeconds * 1000;
    this.now = now;
  }

  versions({ fresh = false }: { fresh?: boolean } = {}): Promise<SecretVersions> {
    const kept = this.read;
    const age = kept ? this.now() - kept.at : Number.POSITIVE_INFINITY;
    if (kept && age <= this.maxAgeMs && !(fresh && age > this.minRefreshMs)) return kept.versions;
    const read = { versions: this.load(), at: this.now() };
    this.read = read;
    // A failed read is not kept: the next caller asks again.
    read.versions.catch(() => {
      if (this.read === read) this.read = undefined;
    });
    return read.versions;
  }

  private async load(): Promise<SecretVersions> {
    const [current, previous] = await Promise.all([this.stage('AWSCURRENT'), this.stage('AWSPREVIOUS')]);
    if (current === undefined || current.length < 32)
      throw new Error('The unsubscribe signing secret is missing or too short');
    // A previous version that is not a usable secret opens nothing: links are checked under the current one.
    return previous !== undefined && previous.length >= 32 ? { current, previous } : { current };
  }

  private async stage(stage: 'AWSCURRENT' | 'AWSPREVIOUS'): Promise<string | undefined> {
    try {
      const { SecretString } = await this.client.send(
        new GetSecretValueCommand({ SecretId: this.secretId, VersionStage: stage }),
      );
      return SecretString;
    } catch (error) {
      // A secret that has never rotated has no AWSPREVIOUS.
      if (stage === 'AWSPREVIOUS' && (error as { name?: unknown }).name === 'ResourceNotFoundException')
        return undefined;
      throw error;
    }
  }
}
