import MailComposer from 'nodemailer/lib/mail-composer';
import { type RenderedEmail, unsubscribeHeaders } from './transport';

export interface MimeSender {
  from: string;
  replyTo?: string | undefined;
}

/**
 * The RFC 5322 message of one reader's copy, as SES's raw content takes it: `From`, the visible
 * `To` and `Cc` (the same on every copy; who receives it is the envelope's business), `Subject`
 * (RFC 2047-encoded when it is not ASCII), the unsubscribe headers, and a text part, or
 * multipart/alternative with the text first and the HTML last (RFC 2046: the richest part last).
 * Built by nodemailer's composer, not by hand: folding, encoded words and quoted-printable are
 * where hand-built messages break.
 */
export function composeMime(email: RenderedEmail, sender: MimeSender): Promise<Buffer> {
  const headers = Object.fromEntries(
    // Prepared: the composer must not fold or encode a URL list that mailbox providers parse.
    unsubscribeHeaders(email).map(({ name, value }) => [name, { prepared: true, value }]),
  );
  return new MailComposer({
    from: sender.from,
    ...(sender.replyTo ? { replyTo: sender.replyTo } : {}),
    to: email.to,
    ...(email.cc.length > 0 ? { cc: email.cc } : {}),
    subject: email.subject,
    text: email.text,
    ...(email.html === undefined ? {} : { html: email.html }),
    headers,
    // Everything is given as strings: never let a value make the composer read a file or a URL.
    disableFileAccess: true,
    disableUrlAccess: true,
  })
    .compile()
    .build();
}
