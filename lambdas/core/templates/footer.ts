import { escapeHtml } from './html';

/**
 * The visible footer of every email: who sent it and where they are (CAN-SPAM asks for a valid
 * postal address in each commercial email), to which address, and how that reader stops the emails
 * (Gmail's and Yahoo's bulk-sender rules ask for a visible unsubscribe link beside the one-click
 * header). Its wording lives here and only here; the README quotes it.
 */
export interface Sender {
  senderName?: string | undefined;
  senderPostalAddress?: string | undefined;
}

/** A rendered email's parts before the footer: the text part always, the HTML part when the job has one. */
export interface EmailParts {
  text: string;
  html?: string | undefined;
}

/**
 * Longer than any unsubscribe link: the public URL (at most 100 characters, or the stage's own URL
 * of about 90) and `/unsubscribe?token=` with a token of at most 1,024 characters.
 */
export const MAX_LINK_LENGTH = 1_200;
/** An address is at most 254 characters (RFC 5321). */
const MAX_READER_LENGTH = 254;

/** Who sent it, as one line: "Name, 1 Main St" or whichever of the two the deployment names. */
const sentBy = ({ senderName, senderPostalAddress }: Sender) =>
  [senderName, senderPostalAddress].filter((part) => part !== undefined && part !== '').join(', ');

/** The footer's first line, with each value as given: the text part shows it as it is, the HTML part escaped. */
function sentTo(sender: Sender, reader: string): string {
  const by = sentBy(sender);
  return `This email was sent to ${reader}${by ? ` by ${by}` : ''}.`;
}

export function textFooter(sender: Sender, reader: string, link: string | undefined): string {
  // "-- " on its own line is the signature separator mail clients recognise (RFC 3676).
  return `\n\n-- \n${sentTo(sender, reader)}${link ? `\nUnsubscribe: ${link}` : ''}\n`;
}

const FOOTER_STYLE =
  'margin-top:32px;padding-top:12px;border-top:1px solid #cccccc;font-family:Arial,sans-serif;font-size:12px;line-height:1.5;color:#555555';

export function htmlFooter(sender: Sender, reader: string, link: string | undefined): string {
  const unsubscribe = link
    ? `<br><a href="${escapeHtml(link)}" style="color:#555555;text-decoration:underline">Unsubscribe</a>`
    : '';
  return `<div style="${FOOTER_STYLE}">${escapeHtml(sentTo(sender, reader))}${unsubscribe}</div>`;
}

/** Where the footer goes in an HTML part: before `</body>` when the template is a whole document, else at the end. */
function insertBeforeBodyEnd(html: string, footer: string): string {
  const end = html.toLowerCase().lastIndexOf('</body');
  return end === -1 ? `${html}${footer}` : `${html.slice(0, end)}${footer}${html.slice(end)}`;
}

/** The email one reader gets: the parts with the footer after the body, in each part. */
export function withFooter(
  parts: EmailParts,
  sender: Sender,
  reader: string,
  link: string | undefined,
): EmailParts {
  return {
    text: `${parts.text}${textFooter(sender, reader, link)}`,
    ...(parts.html === undefined
      ? {}
      : { html: insertBeforeBodyEnd(parts.html, htmlFooter(sender, reader, link)) }),
  };
}

/**
 * The most UTF-8 bytes the footers add to an email (both parts when it has HTML): the sender's
 * words as they are, the longest address at its widest (3 bytes a character in text, an escape of
 * up to 6 in HTML) and the longest link (ASCII: a URL and a base64url token; `&` escapes to 5).
 */
export function worstCaseFooterBytes(sender: Sender, withHtml: boolean): number {
  // One character stands for the address and one for the link: the rest is the footer's own words.
  const fixed = (footer: string) => Buffer.byteLength(footer, 'utf8') - 2;
  const text = fixed(textFooter(sender, 'x', 'y')) + MAX_READER_LENGTH * 3 + MAX_LINK_LENGTH;
  if (!withHtml) return text;
  return text + fixed(htmlFooter(sender, 'x', 'y')) + MAX_READER_LENGTH * 6 + MAX_LINK_LENGTH * 5;
}
