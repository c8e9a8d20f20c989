import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { composeMime, quotedPrintable } from '../../../lambdas/core/transport/mime';
import type { RenderedEmail } from '../../../lambdas/core/transport/transport';

const email = (fields: Partial<RenderedEmail> = {}): RenderedEmail => ({
  to: 'a@example.org',
  cc: [],
  reader: 'a@example.org',
  subject: 'Hello',
  text: 'Dear A,\nthanks.',
  jobId: 'job-1',
  ...fields,
});
const SENDER = { from: 'news@mailer.example' };
const NOW = new Date('2026-12-03T23:40:00.000Z');

/** Every line of a message: CRLF-terminated, none over RFC 5322's 998, and (but for the link list) 78. */
function lines(raw: Buffer): string[] {
  const text = raw.toString('utf8');
  expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  return text.split('\r\n');
}

describe('quotedPrintable', () => {
  it('keeps ASCII readable, encodes every other byte and "=", and ends lines in CRLF', () => {
    expect(quotedPrintable('Grüße = 1\nok')).toBe('Gr=C3=BC=C3=9Fe =3D 1\r\nok');
  });

  it('encodes a space or tab that ends a line, which transports may strip', () => {
    expect(quotedPrintable('end \nend\t\nmid dle')).toBe('end=20\r\nend=09\r\nmid dle');
  });

  it('breaks long lines softly at 76 characters, never inside an =XX', () => {
    const encoded = quotedPrintable(`${'a'.repeat(74)}ü${'b'.repeat(200)}`);
    for (const line of encoded.split('\r\n')) expect(line.length).toBeLessThanOrEqual(76);
    expect(encoded.split('\r\n')[0]).toBe(`${'a'.repeat(74)}=`);
    expect(encoded.replace(/=\r\n/g, '')).toBe(`${'a'.repeat(74)}=C3=BC${'b'.repeat(200)}`);
  });
});

describe('composeMime', () => {
  it('writes the headers a message needs, and a quoted-printable text part', async () => {
    const raw = composeMime(email({ cc: ['boss@example.org', 'board@example.org'] }), SENDER, NOW);
    const parsed = await simpleParser(raw);
    expect(parsed.from?.text).toBe('news@mailer.example');
    expect(parsed.to).toMatchObject({ text: 'a@example.org' });
    expect(parsed.cc).toMatchObject({ text: 'boss@example.org, board@example.org' });
    expect(parsed.date?.toISOString()).toBe(NOW.toISOString());
    expect(parsed.messageId).toMatch(/^<[0-9a-f-]{36}@mailer\.example>$/);
    expect(parsed.text).toBe('Dear A,\nthanks.');
    expect(parsed.html).toBe(false);
    expect(raw.toString()).toContain('Content-Type: text/plain; charset=utf-8');
  });

  it.each([
    ['a long ASCII subject, folded at its spaces', `Our spring report: ${'news and numbers '.repeat(12)}end`],
    ['a subject that is not ASCII', `Grüße aus Köln 👋 ${'ünïcödé '.repeat(20)}`],
    ['a subject that reads like an encoded word', '=?UTF-8?B?PHNjcmlwdD4=?= is text'],
    ['a subject with runs of spaces at the fold', `${'x'.repeat(60)}      ${'y'.repeat(30)}  z`],
    ['one word longer than a header line may be', 'w'.repeat(990)],
  ])('carries %s exactly, in lines of at most 998 characters', async (_, subject) => {
    const raw = composeMime(email({ subject }), SENDER, NOW);
    for (const line of lines(raw)) expect(line.length).toBeLessThanOrEqual(998);
    expect((await simpleParser(raw)).subject).toBe(subject);
  });

  it('keeps every header line but the link list within 78 characters', () => {
    const raw = composeMime(
      email({
        subject: `Grüße ${'a '.repeat(100)}`,
        cc: Array.from({ length: 20 }, (_, n) => `member-${n}@example.org`),
        unsubscribe: {
          url: `https://x.example/unsubscribe?token=${'t'.repeat(300)}`,
          mailto: 'out@x.example',
        },
        text: 'x'.repeat(500),
      }),
      SENDER,
      NOW,
    );
    const long = lines(raw).filter((line) => line.length > 78);
    expect(long.map((line) => line.slice(0, 17))).toEqual(['List-Unsubscribe:']);
  });

  it('writes multipart/alternative with the text first and the HTML last, both read back exactly', async () => {
    const html = `<p>Dear Ünïcode &amp; friends,</p>\n<p>${'long line '.repeat(30)}</p>`;
    const raw = composeMime(email({ text: 'Dear Ünïcode,\r\n\r\nthanks. ', html }), SENDER, NOW);
    const text = raw.toString();
    expect(text).toMatch(/Content-Type: multipart\/alternative; boundary="=_alternative_[0-9a-f-]{36}"/);
    expect(text.indexOf('text/plain')).toBeLessThan(text.indexOf('text/html'));
    const parsed = await simpleParser(raw);
    expect(parsed.text).toBe('Dear Ünïcode,\n\nthanks. ');
    expect(parsed.html).toBe(html);
  });

  it('refuses a header value with a line break rather than add a header', () => {
    expect(() => composeMime(email({ subject: 'Hi\r\nBcc: x@evil.example' }), SENDER)).toThrow(/line break/);
    expect(() => composeMime(email({ to: 'a@example.org\r\nBcc: x@evil.example' }), SENDER)).toThrow(
      /plain address/,
    );
  });
});
