/** A rendered email, ready for a transport. */
export interface RenderedEmail {
  to: string;
  cc: string[];
  subject: string;
  body: string;
  jobId: string;
  /**
   * Where the recipient unsubscribes (RFC 8058): a signed HTTPS link that works with one POST, and a
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
