import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  MAX_TOKEN_LENGTH,
  openUnsubscribeToken,
  type SecretVersions,
  signUnsubscribeToken,
  verifyUnsubscribeToken,
} from '../../../../lambdas/core/suppressions/unsubscribe-token';
import { signVersion1Token } from '../../../support/link-tokens';

const SECRET = 'a'.repeat(64);
const NEXT = 'b'.repeat(64);
const THIRD = 'c'.repeat(64);
const only = (current: string, previous?: string): SecretVersions => ({ current, previous });
const claim = { email: 'info@example.org', jobId: randomUUID() };

/** Every text a token's parts decode to, read as base64url and as it is. */
const readings = (token: string) =>
  token.split('.').flatMap((part) => [part, Buffer.from(part, 'base64url').toString('latin1')]);

describe('unsubscribe tokens', () => {
  it('carry the address, job and recipient they were sealed for', () => {
    expect(verifyUnsubscribeToken(only(SECRET), signUnsubscribeToken(SECRET, claim))).toEqual(claim);
    const copy = { email: 'board@example.org', jobId: claim.jobId, recipient: 'info@example.org' };
    expect(verifyUnsubscribeToken(only(SECRET), signUnsubscribeToken(SECRET, copy))).toEqual(copy);
    expect(
      verifyUnsubscribeToken(only(SECRET), signUnsubscribeToken(SECRET, { email: 'a@b.example' })),
    ).toEqual({
      email: 'a@b.example',
    });
  });

  it('say nothing of the address or the job to whoever reads them', () => {
    fc.assert(
      fc.property(fc.emailAddress(), fc.uuid(), (email, jobId) => {
        const token = signUnsubscribeToken(SECRET, { email, jobId, recipient: `cc-${email}` });
        for (const text of readings(token)) {
          expect(text).not.toContain(email);
          expect(text).not.toContain(jobId);
          expect(text).not.toContain(jobId.replaceAll('-', ''));
        }
      }),
      { numRuns: 200, seed: 20261205 },
    );
  });

  it('name their key by an id that is neither the secret nor the same for another secret', () => {
    const [version, keyId] = signUnsubscribeToken(SECRET, claim).split('.');
    expect(version).toBe('v2');
    expect(keyId).toMatch(/^[A-Za-z0-9_-]{11}$/);
    expect(SECRET).not.toContain(keyId);
    expect(signUnsubscribeToken(NEXT, claim).split('.')[1]).not.toBe(keyId);
  });

  it('are padded: addresses of any usual length, and a cc copy or not, give tokens of one length', () => {
    const lengths = new Set(
      ['a@b.org', 'abcd@example.org', `${'x'.repeat(40)}@example.org`].flatMap((email) => [
        signUnsubscribeToken(SECRET, { email, jobId: claim.jobId }).length,
        signUnsubscribeToken(SECRET, { email, jobId: claim.jobId, recipient: 'info@example.org' }).length,
      ]),
    );
    expect(lengths.size).toBe(1);
  });

  it('stay under the length the query accepts for the longest claim', () => {
    const longest = `${'l'.repeat(64)}@${Array(3).fill('d'.repeat(61)).join('.')}.org`;
    const token = signUnsubscribeToken(SECRET, { email: longest, jobId: claim.jobId, recipient: longest });
    expect(longest).toHaveLength(254);
    expect(token.length).toBeLessThanOrEqual(MAX_TOKEN_LENGTH);
    expect(verifyUnsubscribeToken(only(SECRET), token)?.email).toBe(longest);
  });

  it('are accepted under the current and the previous version, and refused once the secret is retired', () => {
    const sealed = signUnsubscribeToken(SECRET, claim);
    expect(verifyUnsubscribeToken(only(SECRET), sealed)).toEqual(claim);
    // First rotation: the secret is previous.
    expect(verifyUnsubscribeToken(only(NEXT, SECRET), sealed)).toEqual(claim);
    // Second: retired.
    expect(verifyUnsubscribeToken(only(THIRD, NEXT), sealed)).toBeUndefined();
  });

  it('accept version 1 links (sent before encryption) under the current or previous version', () => {
    const v1 = signVersion1Token(SECRET, { ...claim, apiKeyId: 'key-1' });
    expect(verifyUnsubscribeToken(only(SECRET), v1)).toEqual({ ...claim, apiKeyId: 'key-1' });
    expect(verifyUnsubscribeToken(only(NEXT, SECRET), v1)).toEqual({ ...claim, apiKeyId: 'key-1' });
    expect(verifyUnsubscribeToken(only(THIRD, NEXT), v1)).toBeUndefined();
    // A version 1 body with the signature of another: refused.
    const [, mac] = v1.split('.');
    const forged = Buffer.from(JSON.stringify({ v: 1, e: 'victim@example.org' })).toString('base64url');
    expect(verifyUnsubscribeToken(only(SECRET), `${forged}.${mac}`)).toBeUndefined();
  });

  it('are refused under a forged key id, even one of another version', () => {
    const [, , sealed] = signUnsubscribeToken(SECRET, claim).split('.');
    const [, otherId] = signUnsubscribeToken(NEXT, claim).split('.');
    expect(verifyUnsubscribeToken(only(NEXT, SECRET), `v2.${otherId}.${sealed}`)).toBeUndefined();
    expect(verifyUnsubscribeToken(only(SECRET), `v2.AAAAAAAAAAA.${sealed}`)).toBeUndefined();
  });

  it('are refused when any character is changed, added or removed', () => {
    for (const token of [signUnsubscribeToken(SECRET, claim), signVersion1Token(SECRET, claim)]) {
      fc.assert(
        fc.property(
          fc.nat({ max: token.length }),
          fc.constantFrom('change', 'insert', 'delete'),
          fc.constantFrom(...'AZaz09-_.=!~ %'),
          (at, edit, character) => {
            const altered =
              edit === 'delete'
                ? token.slice(0, at) + token.slice(at + 1)
                : token.slice(0, at) + character + token.slice(at + (edit === 'change' ? 1 : 0));
            fc.pre(altered !== token);
            expect(verifyUnsubscribeToken(only(SECRET), altered)).toBeUndefined();
          },
        ),
        { numRuns: 1_000, seed: 20261128 },
      );
    }
  });

  it('are refused when truncated, empty, or not a token at all', () => {
    const token = signUnsubscribeToken(SECRET, claim);
    for (const bad of [
      token.slice(0, -1),
      token.slice(0, token.lastIndexOf('.')),
      '',
      '.',
      'a.b.c',
      'v2..',
      `v2.${token.split('.')[1]}.`,
      'x'.repeat(5_000),
    ])
      expect(verifyUnsubscribeToken(only(SECRET), bad)).toBeUndefined();
  });
});

describe('opening a token from a cached secret', () => {
  const sourceOf = (...reads: SecretVersions[]) => {
    const versions = vi.fn(
      async ({ fresh = false }: { fresh?: boolean } = {}) => (fresh ? reads[1] : reads[0]) as SecretVersions,
    );
    return { versions };
  };

  it('reads afresh once for a key id it has not seen: the secret rotated after this environment read it', async () => {
    const source = sourceOf(only(SECRET), only(NEXT, SECRET));
    expect(await openUnsubscribeToken(source, signUnsubscribeToken(NEXT, claim))).toEqual(claim);
    expect(source.versions).toHaveBeenLastCalledWith({ fresh: true });
  });

  it('does not read afresh for a token it can judge: a known key id, a version 1 link, junk', async () => {
    const source = sourceOf(only(SECRET), only(NEXT, SECRET));
    const [, keyId, sealed] = signUnsubscribeToken(SECRET, claim).split('.');
    for (const token of [`v2.${keyId}.${sealed}A`, signVersion1Token(THIRD, claim), 'junk'])
      expect(await openUnsubscribeToken(source, token)).toBeUndefined();
    expect(source.versions).not.toHaveBeenCalledWith({ fresh: true });
  });

  it('refuses a forged key id after the one fresh read', async () => {
    const source = sourceOf(only(SECRET), only(SECRET));
    const [, , sealed] = signUnsubscribeToken(SECRET, claim).split('.');
    expect(await openUnsubscribeToken(source, `v2.AAAAAAAAAAA.${sealed}`)).toBeUndefined();
    expect(source.versions).toHaveBeenCalledTimes(2);
  });
});
