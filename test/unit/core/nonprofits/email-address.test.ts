import { describe, expect, it } from 'vitest';
import { emailAddress, storedEmailAddress } from '../../../../lambdas/core/nonprofits/nonprofit';

const messages = (value: string) =>
  emailAddress.safeParse(value).error?.issues.map((issue) => issue.message) ?? [];

describe('an email address given for something new', () => {
  it('takes a local part of 64 characters and domain labels of 63, lower-cased', () => {
    const address = `${'A'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.org`;
    expect(emailAddress.parse(address)).toBe(address.toLowerCase());
  });

  it('refuses a local part of 65 characters, naming RFC 5321 and the length found', () => {
    expect(messages(`${'a'.repeat(65)}@example.org`)).toEqual([
      'The part before the @ must be at most 64 characters (RFC 5321); it has 65',
    ]);
  });

  it('refuses a domain label of 64 characters, wherever it stands, naming RFC 1035', () => {
    for (const domain of [`${'b'.repeat(64)}.org`, `mail.${'b'.repeat(64)}.example.org`]) {
      expect(messages(`info@${domain}`)).toEqual([
        `Each dot-separated part of the domain must be at most 63 characters (RFC 1035); bbbbbbbbbbbb… has 64`,
      ]);
    }
  });

  it('names both problems when both parts are too long', () => {
    expect(messages(`${'a'.repeat(70)}@${'b'.repeat(70)}.org`)).toHaveLength(2);
  });

  it('still refuses what was never an address, and anything over 254 characters, once', () => {
    expect(messages('nope')).toEqual(['Must be a valid email address']);
    // Long, but no address: one message, not the parts' lengths too.
    expect(messages('x'.repeat(70))).toEqual(['Must be a valid email address']);
    expect(messages(`${'a'.repeat(64)}@${'b.'.repeat(95)}org`)).toEqual(['Must be at most 254 characters']);
  });
});

describe('an address that finds a stored record', () => {
  it('still takes one stored before the limits were checked, so it can be read, deleted and erased', () => {
    const legacy = `${'a'.repeat(65)}@${'b'.repeat(64)}.org`;
    expect(storedEmailAddress.parse(legacy)).toBe(legacy);
  });
});
