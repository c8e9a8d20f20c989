import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  signUnsubscribeToken,
  verifyUnsubscribeToken,
} from '../../../../lambdas/core/suppressions/unsubscribe-token';

const SECRET = 'a'.repeat(64);
const claim = { email: 'info@example.org', jobId: randomUUID(), apiKeyId: 'key-1' };

describe('unsubscribe tokens', () => {
  it('carry the address, job and key they were signed for', () => {
    expect(verifyUnsubscribeToken(SECRET, signUnsubscribeToken(SECRET, claim))).toEqual(claim);
    expect(verifyUnsubscribeToken(SECRET, signUnsubscribeToken(SECRET, { email: 'a@b.example' }))).toEqual({
      email: 'a@b.example',
      jobId: undefined,
      apiKeyId: undefined,
    });
  });

  it('are refused when signed with another secret', () => {
    expect(verifyUnsubscribeToken(SECRET, signUnsubscribeToken('b'.repeat(64), claim))).toBeUndefined();
  });

  it('are refused for another address, even with the signature of a real one', () => {
    const [, mac] = signUnsubscribeToken(SECRET, claim).split('.');
    const forged = Buffer.from(JSON.stringify({ v: 1, e: 'victim@example.org' })).toString('base64url');
    expect(verifyUnsubscribeToken(SECRET, `${forged}.${mac}`)).toBeUndefined();
  });

  it('are refused when any character is changed, added or removed', () => {
    const token = signUnsubscribeToken(SECRET, claim);
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
          expect(verifyUnsubscribeToken(SECRET, altered)).toBeUndefined();
        },
      ),
      { numRuns: 2_000, seed: 20261128 },
    );
  });

  it('are refused when truncated, empty, or not a token at all', () => {
    const token = signUnsubscribeToken(SECRET, claim);
    for (const bad of [token.slice(0, -1), token.split('.')[0] ?? '', '', '.', 'a.b.c', 'x'.repeat(5_000)])
      expect(verifyUnsubscribeToken(SECRET, bad)).toBeUndefined();
  });
});
