/** A rendered email, ready for a transport. */
export interface RenderedEmail {
  to: string;
  cc: string[];
  subject: string | null;
  body: string;
  jobId: string;
}

/**
 * Hands rendered emails to the world. Throwing `PermanentDeliveryError` records the recipient as
 * failed at once; any other error is treated as transient and the message is retried through SQS.
 */
export interface EmailTransport {
  readonly name: string;
  send(email: RenderedEmail): Promise<void>;
}

export class PermanentDeliveryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentDeliveryError';
  }
}

/**
 * The default transport: sends nothing. The rendered subject, body and cc are stored with each
 * delivery by the progress recorder, which is the record this transport keeps. A real transport
 * (SES, say) implements the same port.
 */
export class RecordTransport implements EmailTransport {
  readonly name = 'record';
  async send(): Promise<void> {}
}

export const TRANSPORTS = { record: () => new RecordTransport() } as const;
export type TransportName = keyof typeof TRANSPORTS;
