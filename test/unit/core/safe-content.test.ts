import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../lambdas/core/errors';
import {
  checkRenderedSize,
  jobVolume,
  MAX_RECIPIENTS,
  sendEmailRequest,
} from '../../../lambdas/core/jobs/job';
import { controlCharacter, PLACEHOLDER_MAX_LENGTH } from '../../../lambdas/core/nonprofits/nonprofit';
import { worstCaseFooterBytes } from '../../../lambdas/core/templates/footer';
import { singleLine } from '../../../lambdas/core/templates/template';

describe('controlCharacter', () => {
  it('finds the first control character and its position', () => {
    expect(controlCharacter('X\r\nBcc: a@evil.example')).toEqual({ codePoint: 'U+000D', position: 1 });
    expect(controlCharacter('ok\u2029')).toEqual({ codePoint: 'U+2029', position: 2 });
    expect(controlCharacter('Plain text, “quoted”, 😀')).toBeUndefined();
  });

  it('passes over the ones allowed', () => {
    expect(controlCharacter('a\tb\r\nc', '\t\n\r')).toBeUndefined();
    expect(controlCharacter('a\tb\u0000', '\t\n\r')).toEqual({ codePoint: 'U+0000', position: 3 });
  });

  // The validation and the consumer's replacement are written apart (templates import nothing).
  it('refuses exactly what singleLine replaces', () => {
    const disagreements: string[] = [];
    for (let unit = 0; unit <= 0xffff; unit++) {
      const char = String.fromCharCode(unit);
      if ((controlCharacter(char) !== undefined) !== (singleLine(char) !== char)) {
        disagreements.push(unit.toString(16));
      }
    }
    expect(disagreements).toEqual([]);
  });
});

describe('job volume: cc copies count as recipients', () => {
  const emails = (count: number) => Array.from({ length: count }, (_, n) => `n${n}@example.org`);
  const cc = (count: number) => Array.from({ length: count }, (_, n) => `c${n}@example.org`);

  it('is recipients times copies', () => {
    expect(jobVolume({ emails: emails(3) })).toBe(3);
    expect(jobVolume({ emails: emails(3), cc: [] })).toBe(3);
    expect(jobVolume({ emails: emails(3), cc: cc(2) })).toBe(9);
  });

  it('accepts a job of exactly the limit, copies included, and refuses one over it on cc', () => {
    const atLimit = { emails: emails(MAX_RECIPIENTS / 4), template: 'Hi', cc: cc(3) };
    expect(jobVolume(atLimit)).toBe(MAX_RECIPIENTS);
    expect(sendEmailRequest.safeParse(atLimit).success).toBe(true);

    const over = sendEmailRequest.safeParse({ ...atLimit, emails: emails(MAX_RECIPIENTS / 4 + 1) });
    expect(over.success).toBe(false);
    expect(over.error?.issues).toEqual([
      expect.objectContaining({
        path: ['cc'],
        message:
          'Each email is copied to 3 cc addresses: 2,501 recipients × 4 copies = 10,004, over the limit of 10,000 per job',
      }),
    ]);
  });

  it('says "address" for a single cc', () => {
    const result = sendEmailRequest.safeParse({ emails: emails(5_001), template: 'Hi', cc: cc(1) });
    expect(result.error?.issues[0]?.message).toMatch(
      /^Each email is copied to 1 cc address: 5,001 recipients × 2 copies/,
    );
  });
});

describe('checkRenderedSize', () => {
  const { name, address, email } = PLACEHOLDER_MAX_LENGTH;
  const sender = { senderName: 'Acme Relief', senderPostalAddress: '1 Main St, Springfield' };
  const limit = (maxRenderedBytes: number) => ({ ...sender, maxRenderedBytes });

  it('counts the subject, the body and the footer, each placeholder at its longest', () => {
    const request = { template: 'Dear {name}, {address}', subject: 'To {email}' };
    const worst =
      'Dear , '.length +
      (name + address) * 3 +
      'To '.length +
      email * 3 +
      worstCaseFooterBytes(sender, false);

    expect(() => checkRenderedSize(request, limit(worst))).not.toThrow();
    expect(() => checkRenderedSize(request, limit(worst - 1))).toThrow(ValidationError);
  });

  it('counts the HTML part with each value escaped at its widest, and its footer', () => {
    const request = { template: 'Hi', html: '<p>{name}</p>' };
    const worst = 'Hi'.length + '<p></p>'.length + name * 6 + worstCaseFooterBytes(sender, true);

    expect(() => checkRenderedSize(request, limit(worst))).not.toThrow();
    expect(() => checkRenderedSize(request, limit(worst - 1))).toThrow(ValidationError);
  });

  it('counts the body alone when there is no subject, and names the limit on template', () => {
    const request = { template: '{name}' };
    const worst = name * 3 + worstCaseFooterBytes(sender, false);
    expect(() => checkRenderedSize(request, limit(worst))).not.toThrow();
    try {
      checkRenderedSize(request, limit(worst - 1));
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).details).toEqual([
        {
          field: 'template',
          message: `Rendered emails could reach ${worst.toLocaleString('en-US')} bytes (subject, body and footer with each placeholder at its field's longest), over the limit of ${(worst - 1).toLocaleString('en-US')} bytes`,
        },
      ]);
    }
  });
});
