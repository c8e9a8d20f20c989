import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { logger } from '../observability/telemetry';
import type { SecretVersions, SigningSecret } from './unsubscribe-token';

/** How long a consumer seals links with the current version it read (see `unsubscribeLinksFromEnv`). */
export const SEALING_SECRET_MAX_AGE_SECONDS = 60;

/** After a failed read, how long the versions read before serve until Secrets Manager is asked again. */
const RETRY_AFTER_FAILURE_MS = 5_000;

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
    const now = this.now();
    const kept = this.read;
    // A read is due when the versions are old or a caller asks afresh, and made at most once per
    // `minRefreshSeconds` whatever asks: callers meanwhile share the read under way or the last.
    const due = !kept || now - kept.at > this.maxAgeMs || fresh;
    const allowed = !kept || now - this.lastAttempt > this.minRefreshMs;
    if (kept && !(due && allowed)) return kept.versions;
    this.lastAttempt = now;
    const versions: Promise<SecretVersions> = this.load().then(
      (read) => {
        this.lastGood = read;
        return read;
      },
      (error: unknown) => {
        const stale = this.lastGood;
        const current = this.read?.versions === versions;
        if (!stale) {
          // Nothing known to fall back on: the caller fails, and the next one asks again.
          if (current) this.read = undefined;
          throw error;
        }
        // Secrets Manager did not answer (throttled, unreachable): the versions known go on
        // serving (a flood of forged key ids is judged, not answered 500), and it is asked again
        // after a short wait rather than by every caller.
        logger.warn('Could not read the unsubscribe link secret; using the versions read before', { error });
        if (current)
          this.read = {
            versions: Promise.resolve(stale),
            at: this.now() - this.maxAgeMs + RETRY_AFTER_FAILURE_MS,
          };
        return stale;
      },
    );
    this.read = { versions, at: now };
    return versions;
  }

  /** When Secrets Manager was last asked. */
  private lastAttempt = Number.NEGATIVE_INFINITY;
  /** The versions of the last read that succeeded. */
  private lastGood: SecretVersions | undefined;

  private async load(): Promise<SecretVersions> {
    // In turn, not at once: a rotation between two reads at once could give the new current version
    // beside the one it retired, missing the one it made previous. Read in this order, a rotation
    // between them can only miss the version it retires.
    const current = await this.stage('AWSCURRENT');
    const previous = await this.stage('AWSPREVIOUS');
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
