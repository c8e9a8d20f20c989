import { type SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import { composeMime } from './mime';
import {
  DeliveryError,
  type DeliveryErrorKind,
  type EmailTransport,
  type Handover,
  type RenderedEmail,
} from './transport';

export interface SesTransportOptions {
  client: SESv2Client;
  /** The verified identity emails are sent from. */
  fromAddress: string;
  replyTo?: string | undefined;
  configurationSet?: string | undefined;
}

/**
 * SES's answers, by what they mean for the email (SES v2 `SendEmail` errors). Anything not listed,
 * and any error without an answer from SES (a timeout, a reset connection), is left as it is: SES
 * may or may not have taken the email, and the consumer treats it so.
 */
const KIND_BY_ERROR: Record<string, DeliveryErrorKind> = {
  // This message or recipient: a sandbox recipient not verified, an address SES will not take.
  MessageRejected: 'rejected',
  BadRequestException: 'rejected',
  // The account's sending rate or daily quota.
  TooManyRequestsException: 'throttled',
  LimitExceededException: 'throttled',
  ThrottlingException: 'throttled',
  // Nothing can be sent until an operator acts: every email would fail the same way, so none is failed.
  SendingPausedException: 'paused',
  // SES v1's names for the account's or a configuration set's sending switched off; v2 documents
  // SendingPausedException only, so both are taken the same way, whichever SES answers.
  ConfigurationSetSendingPausedException: 'paused',
  AccountSendingPausedException: 'paused',
  AccountSuspendedException: 'paused',
  MailFromDomainNotVerifiedException: 'paused',
  NotFoundException: 'paused',
  AccessDeniedException: 'paused',
  InternalServiceErrorException: 'unavailable',
  ServiceUnavailable: 'unavailable',
  InternalFailure: 'unavailable',
};

/**
 * Amazon SES v2 with raw content: each reader's copy is its own message (`composeMime`), sent to
 * that reader alone (the envelope, SES's `Destination`), whatever its visible `To` and `Cc` say.
 */
export class SesTransport implements EmailTransport {
  readonly name = 'ses';

  constructor(private readonly options: SesTransportOptions) {}

  async send(email: RenderedEmail): Promise<Handover> {
    const { client, fromAddress, replyTo, configurationSet } = this.options;
    const message = composeMime(email, { from: fromAddress, replyTo });
    try {
      const answer = await client.send(
        new SendEmailCommand({
          FromEmailAddress: fromAddress,
          Destination: { ToAddresses: [email.reader] },
          ...(configurationSet ? { ConfigurationSetName: configurationSet } : {}),
          Content: { Raw: { Data: message } },
          EmailTags: [{ Name: 'job_id', Value: email.jobId }],
        }),
      );
      return { messageId: answer.MessageId ?? null };
    } catch (error) {
      throw classify(error, fromAddress);
    }
  }
}

/**
 * Whether SES refused the message because the sender's own identity is not verified (yet): SES says
 * `MessageRejected: Email address is not verified. The following identities failed the check…` and
 * names them. Naming the From address or its domain means every email would fail the same way (the
 * identity is pending DNS, or was removed); naming only the recipient is the sandbox refusing one address.
 */
function senderNotVerified(error: Error, fromAddress: string): boolean {
  if (error.name !== 'MessageRejected' || !/not verified/i.test(error.message)) return false;
  const named = new Set(
    error.message
      .slice(error.message.search(/not verified/i))
      .toLowerCase()
      .split(/[\s,]+/)
      .map((word) => word.replace(/[.:;]+$/, '')),
  );
  const address = fromAddress.toLowerCase();
  return named.has(address) || named.has(address.slice(address.lastIndexOf('@') + 1));
}

/**
 * SES v1 tells a paused account as `MessageRejected: Sending paused for this account`: a rejection of
 * every email alike, so the emails wait rather than fail.
 */
const sendingPausedRejection = (error: Error) =>
  error.name === 'MessageRejected' && /sending (is )?(paused|disabled)/i.test(error.message);

/** SES's error as a `DeliveryError` when SES answered; otherwise the error itself (outcome unknown). */
export function classify(error: unknown, fromAddress?: string): unknown {
  if (!(error instanceof Error)) return error;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const kind =
    (fromAddress !== undefined && senderNotVerified(error, fromAddress)) || sendingPausedRejection(error)
      ? 'paused'
      : (KIND_BY_ERROR[error.name] ?? (status !== undefined && status >= 500 ? 'unavailable' : undefined));
  if (!kind) return error;
  return new DeliveryError(kind, `SES ${error.name}: ${error.message}`);
}
