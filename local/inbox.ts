import { createServer, type Server } from 'node:http';
import { type AddressObject, simpleParser } from 'mailparser';
import { escapeHtml } from '../lambdas/core/templates/html';
import { closeServer } from './processes';

/**
 * What a reader of an email sent through the local SES would see, and to whom SES delivered it.
 * The emulator's own store records a raw message's visible `To` and `Cc` as its destination and
 * drops its headers; this inbox keeps the envelope (SendEmail's `Destination`), every header and
 * both parts, parsed by mailparser as a mail client would.
 */
export interface InboxEmail {
  messageId: string;
  /** When SES took it. */
  at: string;
  from: string;
  /** Who SES delivered it to: SendEmail's `Destination`, the envelope. */
  destination: { to: string[]; cc: string[]; bcc: string[] };
  /** What the reader's mail client shows in `To` and `Cc`. */
  shown: { to: string[]; cc: string[] };
  subject: string;
  body: { text?: string | undefined; html?: string | undefined };
  /** Every header as sent, in order (name as written, value unfolded). */
  headers: { name: string; value: string }[];
  /** The message as SES got it (RFC 5322): `GET <inbox>/messages/<id>.eml` serves it. */
  raw: string;
}

/** A send the local SES took: its message id, the call's `Destination` and content. */
export interface TakenSend {
  messageId: string;
  /** When SES took it. */
  at: string;
  from: string;
  destination: InboxEmail['destination'];
  /** The raw message (Content.Raw), or the simple content SES would have built one from. */
  raw?: Buffer;
  simple?: { subject: string; text?: string; html?: string; headers: { name: string; value: string }[] };
}

export interface LocalInbox {
  /** The inbox's page (`GET /`); `/messages` is its JSON, `/messages/<id>.eml` each raw message. */
  url: string;
  /** Keeps a send; it is parsed as a mail client would when the inbox is first read after it. */
  take(send: TakenSend): void;
  /** Empties the inbox (and whatever `onClear` empties with it). */
  clear(): void;
  stop(): Promise<void>;
}

const addresses = (found: AddressObject | AddressObject[] | undefined): string[] =>
  (Array.isArray(found) ? found : found ? [found] : []).flatMap((group) =>
    group.value.flatMap((entry) => (entry.address ? [entry.address] : [])),
  );

async function parsed(send: TakenSend): Promise<InboxEmail> {
  const base = {
    messageId: send.messageId,
    at: send.at,
    from: send.from,
    destination: send.destination,
  };
  if (!send.raw) {
    const simple = send.simple ?? { subject: '', headers: [] };
    return {
      ...base,
      shown: { to: send.destination.to, cc: send.destination.cc },
      subject: simple.subject,
      body: { text: simple.text, html: simple.html },
      headers: simple.headers,
      raw: '',
    };
  }
  let message: Awaited<ReturnType<typeof simpleParser>>;
  try {
    message = await simpleParser(send.raw, { skipImageLinks: true, skipTextToHtml: true });
  } catch (error) {
    // SES took it: the inbox keeps it, raw, and its events are published all the same.
    return {
      ...base,
      shown: { to: send.destination.to, cc: send.destination.cc },
      subject: '',
      body: { text: `(The inbox could not read this message: ${String(error)})`, html: undefined },
      headers: [],
      raw: send.raw.toString('utf8'),
    };
  }
  return {
    ...base,
    from: message.from?.value[0]?.address ?? send.from,
    shown: { to: addresses(message.to), cc: addresses(message.cc) },
    subject: message.subject ?? '',
    body: { text: message.text, html: message.html === false ? undefined : message.html },
    headers: message.headerLines.map(({ key, line }) => {
      const colon = line.indexOf(':');
      return {
        name: colon === -1 ? key : line.slice(0, colon),
        value: line
          .slice(colon + 1)
          .replace(/\r?\n[ \t]/g, ' ')
          .trim(),
      };
    }),
    raw: send.raw.toString('utf8'),
  };
}

/**
 * One header of a raw message (the first of that name), unfolded, its RFC 2047 encoded words
 * (`=?UTF-8?B?…?=`, `=?UTF-8?Q?…?=`) decoded; undefined when the message has none. Reads only the
 * header block: what SES's events tell of an email, without parsing the whole message.
 */
export function headerValue(raw: Buffer, name: string): string | undefined {
  // The header block alone is decoded: the body (most of the message) is never read here.
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  const ends = [crlf, lf].filter((at) => at !== -1);
  const headers = raw
    .subarray(0, ends.length > 0 ? Math.min(...ends) : raw.length)
    .toString('utf8')
    .replace(/\r?\n[ \t]+/g, ' ');
  const wanted = name.toLowerCase();
  for (const line of headers.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon === -1 || line.slice(0, colon).trim().toLowerCase() !== wanted) continue;
    return line
      .slice(colon + 1)
      .trim()
      .replace(/\?=\s+=\?/g, '?==?')
      .replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_, charset: string, encoding: string, data: string) => {
        const bytes =
          encoding.toUpperCase() === 'B'
            ? Buffer.from(data, 'base64')
            : Buffer.from(
                data
                  .replace(/_/g, ' ')
                  .replace(/=([0-9A-Fa-f]{2})/g, (__, hex: string) =>
                    String.fromCharCode(Number.parseInt(hex, 16)),
                  ),
                'latin1',
              );
        try {
          return new TextDecoder(charset).decode(bytes);
        } catch {
          return data; // A charset Node does not know: left as written.
        }
      });
  }
  return undefined;
}

/** One email on the page: its headers, the text part, and the HTML part in a sandbox that runs nothing. */
function emailView(email: InboxEmail): string {
  const headers = email.headers
    .map(({ name, value }) => `<tr><th>${escapeHtml(name)}</th><td>${escapeHtml(value)}</td></tr>`)
    .join('');
  const html =
    email.body.html === undefined
      ? ''
      : `<h3>HTML part</h3><iframe sandbox="" referrerpolicy="no-referrer" srcdoc="${escapeHtml(email.body.html)}"></iframe>`;
  return `<article><h2>${escapeHtml(email.subject)}</h2><p>Delivered to <strong>${escapeHtml(
    [...email.destination.to, ...email.destination.cc, ...email.destination.bcc].join(', '),
  )}</strong> at ${escapeHtml(email.at)} · <a href="messages/${encodeURIComponent(email.messageId)}.eml">raw message</a></p><table>${headers}</table>${html}<h3>Text part</h3><pre>${escapeHtml(email.body.text ?? '')}</pre></article>`;
}

const PAGE_STYLE =
  'body{font-family:system-ui,sans-serif;margin:2rem}article{border-top:1px solid #ccc;padding:1rem 0}th{text-align:left;padding-right:1rem;vertical-align:top}td{word-break:break-all}iframe{width:100%;height:24rem;border:1px solid #ccc}pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem}';

/** Emails the inbox keeps at most (the oldest go first): about 20 KB each, so at most some hundreds of MB. */
export const MAX_KEPT_EMAILS = 10_000;

/**
 * The local runtime's inbox, on its own port: a page of every email, newest first, showing what a
 * reader sees (headers, the HTML part, the text part), the JSON tests read, and each raw message.
 * In memory, the newest `MAX_KEPT_EMAILS`: the emails are gone when the runtime stops.
 */
export async function startInbox(onClear: () => void = () => undefined): Promise<LocalInbox> {
  const emails: InboxEmail[] = [];
  /** Sends taken and not parsed yet, in the order SES took them: parsed when the inbox is read. */
  let unparsed: TakenSend[] = [];
  const clear = () => {
    emails.length = 0;
    unparsed = [];
    onClear();
  };
  // Parsing is asynchronous: a read waits for every send taken before it, parsed in order.
  let parsing: Promise<unknown> = Promise.resolve();
  const parseTaken = () => {
    parsing = parsing.then(async () => {
      while (unparsed.length > 0) {
        const batch = unparsed;
        unparsed = [];
        for (const send of batch) emails.push(await parsed(send));
        // A long local run keeps the newest emails only, so the runtime's memory stays bounded.
        if (emails.length > MAX_KEPT_EMAILS) emails.splice(0, emails.length - MAX_KEPT_EMAILS);
      }
    });
    return parsing;
  };
  const server: Server = createServer((request, response) => {
    void parseTaken().then(() => {
      const path = (request.url ?? '/').split('?')[0] ?? '/';
      const raw = /^\/messages\/([^/]+)\.eml$/.exec(path);
      if (request.method === 'GET' && path === '/messages') {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ emails }));
      } else if (request.method === 'GET' && raw) {
        const email = emails.find((found) => found.messageId === decodeURIComponent(raw[1] ?? ''));
        response.writeHead(email ? 200 : 404, { 'content-type': 'message/rfc822' });
        response.end(email?.raw ?? '');
      } else if (request.method === 'GET' && path === '/') {
        response.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy':
            "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; frame-src 'self'",
        });
        const list = [...emails].reverse().map(emailView).join('') || '<p>No emails yet.</p>';
        response.end(
          `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Local inbox</title><style>${PAGE_STYLE}</style></head><body><h1>Local inbox (${emails.length})</h1>${list}</body></html>`,
        );
      } else if (request.method === 'POST' && path === '/clear') {
        clear();
        response.writeHead(204);
        response.end();
      } else {
        response.writeHead(404);
        response.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    take(send) {
      unparsed.push(send);
      // Unread, a long run keeps no more than the newest emails either.
      if (unparsed.length > MAX_KEPT_EMAILS) unparsed.splice(0, unparsed.length - MAX_KEPT_EMAILS);
    },
    clear,
    stop: () => closeServer(server),
  };
}
