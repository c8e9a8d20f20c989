import { createCipheriv, createDecipheriv, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { storedEmailAddress } from '../nonprofits/nonprofit';
import * as z from '../zod';

/**
 * The token in an email's unsubscribe link: who it was sent to and which job sent it, sealed with a
 * key only the deployment holds. Anyone holding the link can unsubscribe that one address, nobody
 * can make a link for another, and nobody can read the address or the job from the link (a link is
 * logged by proxies and mail scanners, and shared by forwarding): AES-256-GCM encrypts and
 * authenticates it.
 *
 * The key comes from the signing secret, which rotates (Secrets Manager, every
 * `unsubscribeSecretRotationDays`). A token names its key by an id derived from the secret, and is
 * accepted under the secret's current and previous versions: a link works for at least one
 * rotation period after it was sent. Links carry no expiry of their own (RFC 8058 asks that a link
 * keep working for as long as the email may be read, CAN-SPAM at least 30 days).
 *
 * Tokens from before encryption (version 1: the claim in clear, HMAC-SHA256 signed) are still
 * accepted under either version of the secret, so links already sent keep working until their
 * secret is retired by the second rotation. None is made any more.
 */
export interface UnsubscribeClaim {
  /** The reader the link unsubscribes. */
  email: string;
  jobId?: string | undefined;
  /** Version 1 tokens only: the API key that sent the job (now read from the job). */
  apiKeyId?: string | undefined;
  /** The recipient whose email a cc reader's copy was (absent when the reader is the recipient): its ledger entry notes the unsubscribe. */
  recipient?: string | undefined;
}

/** The versions of the signing secret a link may have been sealed with. */
export interface SecretVersions {
  /** AWSCURRENT: what new links are sealed with. */
  current: string;
  /** AWSPREVIOUS, once the secret has rotated: links sealed before the last rotation. */
  previous?: string | undefined;
}

/** Where the signing secret comes from (Secrets Manager in AWS and in the local runtime). */
export interface SigningSecret {
  /**
   * The current and previous versions, from a cache. `fresh` asks to read past the cache (a token
   * names a key this environment has not seen: the secret may have rotated since it was read); the
   * source may still answer from the cache if it read very recently.
   */
  versions(options?: { fresh?: boolean }): Promise<SecretVersions>;
}

/** Longer than any token this code makes or made (two addresses of 254 characters, a job id, the tag). */
export const MAX_TOKEN_LENGTH = 1_024;

// ---------------------------------------------------------------------------------------------
// Version 2: `v2.<key id>.<base64url(iv | ciphertext | tag)>`
// ---------------------------------------------------------------------------------------------

const V2_PREFIX = 'v2';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/**
 * The sizes the plaintext is padded to: nearly every claim fits the first (an address of up to
 * about 70 characters, or a cc reader's copy with two short ones), so a token's length tells
 * almost nothing of the address or whether it was a cc copy. Longer claims take the next size.
 */
const PADDED_SIZES = [128, 256, 640] as const;
const paddedSize = (length: number) =>
  PADDED_SIZES.find((size) => size >= length) ?? Math.ceil(length / 128) * 128;
const V2_TOKEN = /^v2\.([A-Za-z0-9_-]{11})\.([A-Za-z0-9_-]+)$/;

interface LinkKey {
  /** 8 bytes, base64url: names the secret's version in a token without telling anything of it. */
  id: string;
  encryption: Buffer;
  /** Makes the IV from the plaintext (below). */
  iv: Buffer;
}

/** Keys are derived once per secret value: an environment sees two or three values in its life. */
const derived = new Map<string, LinkKey>();

function linkKey(secret: string): LinkKey {
  let key = derived.get(secret);
  if (!key) {
    // HKDF-SHA256 with a label per use: the three are independent, and none tells the secret.
    const part = (label: string, bytes: number) =>
      Buffer.from(
        hkdfSync('sha256', secret, Buffer.alloc(0), `nonprofit-mailer unsubscribe ${label}`, bytes),
      );
    key = {
      id: part('key id', 8).toString('base64url'),
      encryption: part('aes-256-gcm', 32),
      iv: part('synthetic iv', 32),
    };
    if (derived.size >= 8) derived.clear();
    derived.set(secret, key);
  }
  return key;
}

// The claim's fields by one letter: a link's length is worth keeping short.
const claimV2 = z.strictObject({
  e: storedEmailAddress,
  j: z.uuid().optional(),
  r: storedEmailAddress.optional(),
});

/**
 * Seals a claim under the secret's current version. The IV is an HMAC of the plaintext (a synthetic
 * IV, as in SIV modes) rather than random: a random 96-bit IV may repeat after about 2^32 links
 * under one key (NIST SP 800-38D's bound), within reach of a large sender in one rotation period,
 * and a repeated GCM IV gives away the authentication key. A synthetic IV repeats only for the same
 * claim, which then gives the same token. The header is authenticated with it.
 */
export function signUnsubscribeToken(secret: string, claim: UnsubscribeClaim): string {
  const key = linkKey(secret);
  const json = JSON.stringify({ e: claim.email, j: claim.jobId, r: claim.recipient });
  // JSON allows trailing spaces: the padding needs no length of its own.
  const bytes = Buffer.byteLength(json, 'utf8');
  const plaintext = Buffer.from(json + ' '.repeat(paddedSize(bytes) - bytes), 'utf8');
  const header = `${V2_PREFIX}.${key.id}`;
  const iv = createHmac('sha256', key.iv).update(header).update(plaintext).digest().subarray(0, IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.encryption, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(header, 'utf8'));
  const sealed = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return `${header}.${sealed.toString('base64url')}`;
}

/** The version of the secret whose key a token names, if either is. */
const versionNamed = (versions: SecretVersions, keyId: string) =>
  [versions.current, versions.previous].find(
    (secret) => secret !== undefined && linkKey(secret).id === keyId,
  );

function openV2(versions: SecretVersions, keyId: string, text: string): UnsubscribeClaim | undefined {
  const secret = versionNamed(versions, keyId);
  if (secret === undefined) return undefined;
  const sealed = Buffer.from(text, 'base64url');
  // Base64url decoding skips what it cannot read: only the exact encoding of the bytes is accepted.
  if (sealed.toString('base64url') !== text || sealed.length < IV_BYTES + TAG_BYTES + PADDED_SIZES[0])
    return undefined;
  const key = linkKey(secret);
  let plaintext: string;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.encryption, sealed.subarray(0, IV_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(Buffer.from(`${V2_PREFIX}.${keyId}`, 'utf8'));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    plaintext = Buffer.concat([
      decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    // The tag does not match: altered, cut, or sealed with another key.
    return undefined;
  }
  const parsed = claimV2.safeParse(parseJson(plaintext));
  if (!parsed.success) return undefined;
  return { email: parsed.data.e, jobId: parsed.data.j, recipient: parsed.data.r };
}

// ---------------------------------------------------------------------------------------------
// Version 1 (until December 2026): `<base64url(JSON claim)>.<base64url(HMAC-SHA256)>`
// ---------------------------------------------------------------------------------------------

const claimV1 = z.strictObject({
  v: z.literal(1),
  e: storedEmailAddress,
  j: z.uuid().optional(),
  k: z.string().min(1).max(128).optional(),
  r: storedEmailAddress.optional(),
});

const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** HMAC-SHA256's 32 bytes in base64url, unpadded. */
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/;

const macOf = (secret: string, body: string) =>
  Buffer.from(createHmac('sha256', secret).update(body).digest().toString('base64url'), 'utf8');

function openV1(versions: SecretVersions, body: string, mac: string): UnsubscribeClaim | undefined {
  if (!BASE64URL.test(body) || !SIGNATURE.test(mac)) return undefined;
  // The signature's text is compared, not its decoded bytes: base64url's last character has bits
  // no byte uses, so two texts can decode alike. In constant time, so a refusal's timing tells nothing.
  const given = Buffer.from(mac, 'utf8');
  const signed = [versions.current, versions.previous].some((secret) => {
    if (secret === undefined) return false;
    const expected = macOf(secret, body);
    return expected.length === given.length && timingSafeEqual(given, expected);
  });
  if (!signed) return undefined;
  const parsed = claimV1.safeParse(parseJson(Buffer.from(body, 'base64url').toString('utf8')));
  if (!parsed.success) return undefined;
  return { email: parsed.data.e, jobId: parsed.data.j, apiKeyId: parsed.data.k, recipient: parsed.data.r };
}

// ---------------------------------------------------------------------------------------------

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The claim a token carries, or undefined when it is not one this deployment made, whole, under these versions. */
export function verifyUnsubscribeToken(
  versions: SecretVersions,
  token: string,
): UnsubscribeClaim | undefined {
  if (token.length > MAX_TOKEN_LENGTH) return undefined;
  const v2 = V2_TOKEN.exec(token);
  if (v2?.[1] && v2[2]) return openV2(versions, v2[1], v2[2]);
  const [body, mac, extra] = token.split('.');
  if (!body || !mac || extra !== undefined) return undefined;
  return openV1(versions, body, mac);
}

/**
 * The claim a token carries, under the versions the source holds. A token naming a key neither
 * version has is checked once more with the versions read afresh: this environment may have read
 * the secret before its last rotation. (A forged key id costs at most that one read; the source
 * decides how often it really reads.)
 */
export async function openUnsubscribeToken(
  secret: SigningSecret,
  token: string,
): Promise<UnsubscribeClaim | undefined> {
  const versions = await secret.versions();
  const claim = verifyUnsubscribeToken(versions, token);
  const keyId = V2_TOKEN.exec(token)?.[1];
  if (claim || keyId === undefined || token.length > MAX_TOKEN_LENGTH) return claim;
  return versionNamed(versions, keyId) !== undefined
    ? undefined
    : verifyUnsubscribeToken(await secret.versions({ fresh: true }), token);
}

/**
 * The address as the page shows it: its first characters and top-level domain only. Whoever holds
 * a link (a forwarded email, a proxy's log, a link scanner) can open its page; the person it
 * unsubscribes knows their own address from this much.
 */
export function maskAddress(email: string): string {
  const at = email.lastIndexOf('@');
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  const dot = domain.lastIndexOf('.');
  const top = dot > 0 ? domain.slice(dot) : '';
  return `${[...local][0] ?? ''}•••@${[...domain][0] ?? ''}•••${top}`;
}

// Not strict: a link rewriter or tracker may append parameters, and the recipient must still get out.
/** The query of `GET|POST /unsubscribe`. */
export const unsubscribeQuery = z.object({
  token: z.string().min(1, 'Must not be empty').max(MAX_TOKEN_LENGTH, 'Not an unsubscribe token'),
});
