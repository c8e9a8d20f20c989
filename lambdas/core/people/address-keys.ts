import { createHmac } from 'node:crypto';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/**
 * What stands for an erased address wherever the address stood: `erased:` and the HMAC-SHA256 of
 * the lower-case address under the deployment's address key. The same address always gives the
 * same key, so counts stay exact, a later mention of the address (a re-import, a cc) is known as
 * erased, and the key can stand where an address is a key (a ledger entry, a suppression); without
 * the secret, nobody can tell which address it was, or test a list of guesses against it.
 */
export const ERASED_PREFIX = 'erased:';

export const isErasedKey = (value: string) => value.startsWith(ERASED_PREFIX);

export const erasedKeyWith = (secret: string, email: string) =>
  `${ERASED_PREFIX}${createHmac('sha256', secret).update(email.toLowerCase()).digest('hex')}`;

/** The deployment's address key. */
export interface AddressKeys {
  erasedKeyOf(email: string): Promise<string>;
}

/** Seconds a read secret is kept per execution environment. It never changes, so the cache only saves calls. */
const CACHE_SECONDS = 3_600;

/**
 * The address key from Secrets Manager (generated at deploy, never rotated: a new one would make
 * every erased address unknown again), read with Powertools Parameters and cached.
 */
export class SecretsManagerAddressKeys implements AddressKeys {
  private readonly provider: SecretsProvider;

  constructor(
    private readonly secretId: string,
    client?: SecretsManagerClient,
  ) {
    this.provider = new SecretsProvider(client ? { awsSdkV3Client: client } : {});
  }

  /** The read under way or done: an import's thousand keys wait for one read, not a thousand. */
  private read: { secret: Promise<string>; at: number } | undefined;

  async erasedKeyOf(email: string): Promise<string> {
    return erasedKeyWith(await this.secret(), email);
  }

  private secret(): Promise<string> {
    if (!this.read || Date.now() - this.read.at > CACHE_SECONDS * 1000) {
      const secret = this.provider.get(this.secretId, { maxAge: CACHE_SECONDS }).then((value) => {
        if (typeof value !== 'string' || value.length < 32)
          throw new Error('The address key secret is missing or too short');
        return value;
      });
      const read = { secret, at: Date.now() };
      this.read = read;
      // A failed read is not kept: the next key asks again.
      secret.catch(() => {
        if (this.read === read) this.read = undefined;
      });
    }
    return this.read.secret;
  }
}
