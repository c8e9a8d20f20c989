import { randomUUID } from 'node:crypto';
import { type RenderedEmail, unsubscribeHeaders } from './transport';

export interface MimeSender {
  from: string;
  replyTo?: string | undefined;
}

// The RFC 5322 message of one reader's copy, as SES's raw content takes it. Written here rather
// than with a mail library: a general composer (attachments, file and URL sources, a table of every
// MIME type) tripled the consumer's bundle, and these messages need only what follows. The unit
// tests read every message back with a real parser (mailparser), as mail clients would.

const CRLF = '\r\n';
/** RFC 5322's recommended line length; 998 is the hard limit. */
const LINE = 76;

/** Header values come from validated data and our own settings: a line break would add a header. */
function headerSafe(name: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new Error(`The ${name} header may not contain a line break`);
  return value;
}

/** An address for a header: the validated, ASCII addresses this service sends to and from. */
function address(name: string, value: string): string {
  if (!/^[\x21-\x7e]+@[\x21-\x7e]+$/.test(value)) throw new Error(`The ${name} header needs a plain address`);
  return value;
}

/** A list of addresses, one per folded line, so no line grows with the list. */
const addressList = (name: string, values: readonly string[]) =>
  values.map((value) => address(name, value)).join(`,${CRLF} `);

/**
 * RFC 2047 encoded words (`=?UTF-8?B?…?=`), each of 64 characters at most and never splitting a
 * character, one per folded line: how a subject that is not plain ASCII travels in a header.
 */
function encodedWords(text: string): string {
  const words: string[] = [];
  let chunk = '';
  for (const character of text) {
    // 39 bytes make 52 base64 characters: with `=?UTF-8?B?`, `?=` and `Subject: `, 73.
    if (Buffer.byteLength(chunk + character, 'utf8') > 39) {
      words.push(chunk);
      chunk = '';
    }
    chunk += character;
  }
  words.push(chunk);
  return words.map((word) => `=?UTF-8?B?${Buffer.from(word, 'utf8').toString('base64')}?=`).join(`${CRLF} `);
}

/**
 * The subject as a header value: plain ASCII folded at its spaces, or encoded words when it is not
 * ASCII, holds `=?` (a reader would decode it as an encoded word), or has a run too long to fold.
 */
function subjectHeader(subject: string): string {
  headerSafe('Subject', subject);
  if (!/^[\x20-\x7e]*$/.test(subject) || subject.includes('=?')) return encodedWords(subject);
  const lines: string[] = [];
  let line = 'Subject:';
  for (const word of subject.split(' ')) {
    if (word !== '' && line.length + 1 + word.length > LINE && line !== 'Subject:') {
      lines.push(line);
      line = '';
    }
    line += ` ${word}`;
  }
  lines.push(line);
  if (lines.some((folded) => folded.length > 998)) return encodedWords(subject);
  // Folding puts the space that began each continuation line at its start: unfolding restores it.
  return lines.join(CRLF).slice('Subject: '.length);
}

/**
 * Quoted-printable (RFC 2045): ASCII stays readable, every other byte is `=XX`, lines end in CRLF,
 * and no line passes 76 characters (a soft break `=` continues it). Spam filters read a text part
 * encoded this way as they read plain text, which base64 would hide.
 */
export function quotedPrintable(text: string): string {
  return text
    .split(/\r\n|\r|\n/)
    .map((line) => {
      const bytes = Buffer.from(line, 'utf8');
      const out: string[] = [];
      let current = '';
      bytes.forEach((byte, index) => {
        const last = index === bytes.length - 1;
        const literal = (byte >= 33 && byte <= 126 && byte !== 61) || ((byte === 32 || byte === 9) && !last);
        const token = literal
          ? String.fromCharCode(byte)
          : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
        // Room for the soft break's `=`: a token is never split.
        if (current.length + token.length > LINE - 1) {
          out.push(`${current}=`);
          current = '';
        }
        current += token;
      });
      out.push(current);
      return out.join(CRLF);
    })
    .join(CRLF);
}

const textPart = (type: 'plain' | 'html', content: string) =>
  [
    `Content-Type: text/${type}; charset=utf-8`,
    'Content-Transfer-Encoding: quoted-printable',
    '',
    quotedPrintable(content),
  ].join(CRLF);

/** RFC 5322's date: `Thu, 03 Dec 2026 23:40:00 +0000`. */
const rfc5322Date = (date: Date) => date.toUTCString().replace(/GMT$/, '+0000');

/**
 * One reader's copy: `From`, the visible `To` and `Cc` (the same on every copy; who receives it is
 * the envelope's business), `Subject`, the unsubscribe headers, and a text part, or
 * multipart/alternative with the text first and the HTML last (RFC 2046: the richest part last).
 */
export function composeMime(email: RenderedEmail, sender: MimeSender, now: Date = new Date()): Buffer {
  const domain = sender.from.slice(sender.from.lastIndexOf('@') + 1);
  const headers = [
    `From: ${address('From', sender.from)}`,
    ...(sender.replyTo ? [`Reply-To: ${address('Reply-To', sender.replyTo)}`] : []),
    `To: ${address('To', email.to)}`,
    ...(email.cc.length > 0 ? [`Cc: ${addressList('Cc', email.cc)}`] : []),
    `Subject: ${subjectHeader(email.subject)}`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <${randomUUID()}@${domain}>`,
    // Given as they are: mailbox providers parse the URL list, which must not be folded or encoded.
    ...unsubscribeHeaders(email).map(({ name, value }) => `${name}: ${headerSafe(name, value)}`),
    'MIME-Version: 1.0',
  ];
  if (email.html === undefined)
    return Buffer.from([...headers, textPart('plain', email.text)].join(CRLF), 'utf8');
  const boundary = `=_alternative_${randomUUID()}`;
  return Buffer.from(
    [
      ...headers,
      `Content-Type: multipart/alternative; boundary="${boundary}"`,
      '',
      `--${boundary}`,
      textPart('plain', email.text),
      `--${boundary}`,
      textPart('html', email.html),
      `--${boundary}--`,
      '',
    ].join(CRLF),
    'utf8',
  );
}
