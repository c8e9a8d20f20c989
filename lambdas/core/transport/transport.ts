/**
 * One message of a rendered email, to one reader. An email with cc addresses is one message per
 * reader, each with the same visible `To` and `Cc` and its own footer and unsubscribe link, so a
 * link only ever unsubscribes the address it was sent to.
 */
export interface RenderedEmail {
  /** The nonprofit the email is addressed to: the visible `To` of every message. */
  to: string;
  /** The visible `Cc` of every message (suppressed addresses left out). */
  cc: string[];
  /** The one address this message is delivered to (its envelope): `to`, or one of `cc`. */
  reader: string;
  subject: string;
  /** The text part, footer included. */
  text: string;
  /** The HTML part, footer included, when the job has an HTML template: the message is then multipart/alternative. */
  html?: string | undefined;
  jobId: string;
  /**
   * Where the reader unsubscribes (RFC 8058): a signed HTTPS link that works with one POST, and a
   * mailbox when the deployment names one. A transport puts them in the email's headers.
   */
  unsubscribe?: { url: string; mailto?: string | undefined } | undefined;
}

/** The `List-Unsubscribe` and `List-Unsubscribe-Post` headers (RFC 2369, RFC 8058) of an email, if it has a link. */
export function unsubscribeHeaders(
  email: Pick<RenderedEmail, 'unsubscribe'>,
): { name: string; value: string }[] {
  if (!email.unsubscribe) return [];
  const { url, mailto } = email.unsubscribe;
  const targets = [`<${url}>`, ...(mailto ? [`<mailto:${mailto}?subject=unsubscribe>`] : [])];
  return [
    { name: 'List-Unsubscribe', value: targets.join(', ') },
    { name: 'List-Unsubscribe-Post', value: 'List-Unsubscribe=One-Click' },
  ];
}

/** What a transport says of an email it accepted. */
export interface Handover {
  /** The transport's id of the message (SES's MessageId), when it gives one. */
  messageId: string | null;
}

/**
 * Hands rendered emails to the world. A transport that did not take the email throws a
 * `DeliveryError` saying what to do next; any other error is treated as transient, and whether the
 * email left is unknown.
 */
export interface EmailTransport {
  readonly name: string;
  send(email: RenderedEmail): Promise<Handover>;
}

/**
 * What a refusal means for the email:
 * - `rejected`: this email or address will not be taken; the recipient fails with the reason.
 * - `throttled`: the transport is over its rate; try again after a growing delay, not counted failed.
 * - `paused`: sending is paused for the account or configuration set; nothing is failed, wait.
 * - `unavailable`: the transport answered with a server error and did not take the email; retry.
 */
export type DeliveryErrorKind = 'rejected' | 'throttled' | 'paused' | 'unavailable';

export class DeliveryError extends Error {
  constructor(
    readonly kind: DeliveryErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}

/**
 * Sends nothing: the outcome recorded in the ledger (and the rendered email, when stored) is the
 * whole record. For deployments that want the ledger and do their own delivery, and for tests.
 */
export class RecordTransport implements EmailTransport {
  readonly name = 'record';
  async send(): Promise<Handover> {
    return { messageId: null };
  }
}
