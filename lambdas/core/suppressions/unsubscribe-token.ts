import { createHmac, timingSafeEqual } from 'node:crypto';
import { storedEmailAddress } from '../nonprofits/nonprofit';
import * as z from '../zod';

/**
 * The token in an email's unsubscribe link: who it was sent to, which job sent it and under which
 * API key, signed with a secret only the deployment holds (HMAC-SHA256). Anyone holding the link
 * can unsubscribe that one address, and nobody can make a link for another: changing, cutting or
 * forging any part breaks the signature. It carries no expiry: a link in an old email must still
 * work (RFC 8058 asks that it keep working for as long as the email may be read).
 */
export interface UnsubscribeClaim {
  /** The reader the link unsubscribes. */
  email: string;
  jobId?: string | undefined;
  apiKeyId?: string | undefined;
  /** The recipient whose email a cc reader's copy was (absent when the reader is the recipient): its ledger entry notes the unsubscribe. */
  recipient?: string | undefined;
}

/** Where the signing secret comes from (Secrets Manager in AWS, the state folder locally). */
export interface SigningSecret {
  get(): Promise<string>;
}

/** Longer than any token this code makes (two addresses of 254 characters, a job id, the signature). */
export const MAX_TOKEN_LENGTH = 1_024;

const payload = z.strictObject({
  v: z.literal(1),
  e: storedEmailAddress,
  j: z.uuid().optional(),
  k: z.string().min(1).max(128).optional(),
  r: storedEmailAddress.optional(),
});

const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** HMAC-SHA256's 32 bytes in base64url, unpadded. */
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/;

const signature = (secret: string, body: string) => createHmac('sha256', secret).update(body).digest();

export function signUnsubscribeToken(secret: string, claim: UnsubscribeClaim): string {
  const body = Buffer.from(
    JSON.stringify({ v: 1, e: claim.email, j: claim.jobId, k: claim.apiKeyId, r: claim.recipient }),
    'utf8',
  ).toString('base64url');
  return `${body}.${signature(secret, body).toString('base64url')}`;
}

/** The claim a token carries, or undefined when it is not one this deployment signed, whole. */
export function verifyUnsubscribeToken(secret: string, token: string): UnsubscribeClaim | undefined {
  if (token.length > MAX_TOKEN_LENGTH) return undefined;
  const [body, mac, extra] = token.split('.');
  // Base64url decoding skips characters outside its alphabet: only the exact text is accepted.
  if (!body || !mac || extra !== undefined || !BASE64URL.test(body) || !SIGNATURE.test(mac)) return undefined;
  // The signature's text is compared, not its decoded bytes: base64url's last character has bits
  // no byte uses, so two texts can decode alike. In constant time, so a refusal's timing tells nothing.
  const expected = Buffer.from(signature(secret, body).toString('base64url'), 'utf8');
  const given = Buffer.from(mac, 'utf8');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = payload.safeParse(decoded);
  if (!parsed.success) return undefined;
  return { email: parsed.data.e, jobId: parsed.data.j, apiKeyId: parsed.data.k, recipient: parsed.data.r };
}

// Not strict: a link rewriter or tracker may append parameters, and the recipient must still get out.
/** The query of `GET|POST /unsubscribe`. */
export const unsubscribeQuery = z.object({
  token: z.string().min(1, 'Must not be empty').max(MAX_TOKEN_LENGTH, 'Not an unsubscribe token'),
});
