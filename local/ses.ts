import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { LOCAL_CREDENTIALS } from './dynamodb';
import { headerValue, type InboxEmail, startInbox, type TakenSend } from './inbox';
import { type LocalAnswer, startObservingProxy } from './observing-proxy';
import { closeServer, listeningPort } from './processes';
import { LOCAL_REGION } from './template';

/**
 * aws-ses-v2-local is CommonJS with `exports.default`. Imported from ESM its default import is the
 * whole `module.exports` under tsx (Node's own interop) but the function under vitest (which unwraps
 * `__esModule`); `require` gives `module.exports` everywhere, so `.default` is always the server.
 */
const { default: createSesServer } = createRequire(import.meta.url)(
  'aws-ses-v2-local',
) as typeof import('aws-ses-v2-local');

export interface LocalSes {
  /** Where SDK clients send SES v1 and v2 calls. */
  endpoint: string;
  /** The inbox page of the emails received (`GET /`, local/inbox.ts); `readInbox` reads its JSON. */
  inboxUrl: string;
  stop(): Promise<void>;
}

export interface LocalSesOptions {
  /** The sending quota's maximum send rate GetAccount reports; 14 by default. */
  maxSendRate?: number;
  /** The configuration sets that exist (the template's): GetConfigurationSet answers them, as the emulator knows none. */
  configurationSets?: readonly string[];
  /** Called with each email the emulator took, as SES's event publishing sees it. */
  onSent?: (email: SentEmail) => void;
  /**
   * The account is in the SES sandbox (context `sesSandbox`): as SES does, an email whose sender or
   * any recipient is not a verified identity (the address, or its domain) is refused with
   * `MessageRejected`. `CreateEmailIdentity` verifies an identity at once (SES would first wait for
   * the owner to click a link, or for DNS); `verified` are verified from the start.
   */
  sandbox?: { verified: readonly string[] } | undefined;
  /**
   * The identities the template creates (`AWS::SES::EmailIdentity`): GetEmailIdentity reports them
   * verified, with DKIM and the MAIL FROM domain successful, as SES does once their DNS records are
   * published. Any other is SES's 404.
   */
  identities?: readonly LocalIdentity[];
}

/** An SES identity of the template: its name (a domain or an address) and its MAIL FROM domain, if any. */
export interface LocalIdentity {
  name: string;
  mailFromDomain?: string | undefined;
}

/** An email SES took, with what its events carry: the message id, the addresses, the configuration set and tags. */
export interface SentEmail {
  messageId: string;
  timestamp: string;
  from: string;
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  configurationSet: string | undefined;
  tags: Record<string, string>;
}

/** The send rate SES gives an account when it first leaves the sandbox. */
const NEW_PRODUCTION_SEND_RATE = 14;

export type { InboxEmail } from './inbox';

/** The AWS_SES_ACCOUNT value this module set, so a later start may replace it but never a caller's own. */
let accountSetHere: string | undefined;

/**
 * aws-ses-v2-local: an in-process SES (v1 and v2 SendEmail, SendRawEmail, templates, GetAccount)
 * with a web viewer of what it received. Nothing is delivered (unless SMTP_TRANSPORT configures an
 * SMTP server for the package to forward to). Its inbox lives in memory, in one store per process
 * (the package's own singleton): every server started in this process shows the same emails, and
 * they are lost when the process, as with `npm start`, stops.
 */
export async function startLocalSes(options: LocalSesOptions = {}): Promise<LocalSes> {
  // The health check asks SES for the account, and the package answers GetAccount only from this
  // variable (400 when it is unset or fails its schema): a production account in good standing.
  const current = process.env.AWS_SES_ACCOUNT;
  if (current === undefined || current === accountSetHere) {
    accountSetHere = JSON.stringify(
      localAccount(options.maxSendRate ?? NEW_PRODUCTION_SEND_RATE, options.sandbox !== undefined),
    );
    process.env.AWS_SES_ACCOUNT = accountSetHere;
  }
  const server: Server = await createSesServer({ host: '127.0.0.1', port: 0 });
  // Express 5 hands a listen error to the callback, which the package resolves with all the same.
  const port = listeningPort(server, 'Local SES');
  const emulator = `http://127.0.0.1:${port}`;
  // The emulator keeps every email too (its viewer at its root): emptied with the inbox, so a long
  // run does not grow it without end.
  const inbox = await startInbox(() => {
    void fetch(`${emulator}/clear-store`, { method: 'POST' }).catch(() => undefined);
  });
  // In front of the emulator: the configuration sets it lacks, the sandbox's identities, and each
  // email SES took, kept in the inbox and told to `onSent`.
  const configurationSets = new ConfigurationSets(options.configurationSets ?? []);
  const sandbox = options.sandbox && new SandboxIdentities(options.sandbox.verified);
  const identities = new Map(
    (options.identities ?? []).map((identity) => [identity.name.toLowerCase(), identity] as const),
  );
  const took = (send: TakenSend, call: SendEmailCall) => {
    inbox.take(send);
    options.onSent?.(sentEmail(send, call));
  };
  // With SMTP_TRANSPORT set, the emulator forwards what it takes: every send goes to it.
  const forwarding = Boolean(process.env.SMTP_TRANSPORT);
  const front = await startObservingProxy(
    emulator,
    (exchange) => {
      // A send the emulator answered (forwarding, or content this front leaves to it).
      if (exchange.method !== 'POST' || exchange.path !== SEND_EMAIL_PATH || exchange.status !== 200) return;
      const call = readJson<SendEmailCall>(exchange.request);
      const messageId = readJson<{ MessageId?: string }>(exchange.answer)?.MessageId;
      if (call && messageId) took(takenSend(call, messageId), call);
    },
    ({ method, path, body }) => {
      if (sandbox && method === 'POST' && path === IDENTITIES_PATH) return sandbox.create(body);
      if (method === 'POST' && path === SEND_EMAIL_PATH) {
        const call = readJson<SendEmailCall>(body);
        if (!call) return undefined;
        const refused = configurationSets.refusal(call) ?? sandbox?.refusal(call);
        if (refused || forwarding || !isPlainSend(call)) return refused;
        // Taken here, not by the emulator: it would parse the message and keep a copy the inbox
        // keeps already, one more hop and parse per email (a fifth of the runtime's time sending).
        const messageId = sesMessageId();
        took(takenSend(call, messageId), call);
        return { status: 200, headers: JSON_HEADERS, body: JSON.stringify({ MessageId: messageId }) };
      }
      const identity = method === 'GET' ? IDENTITY_PATH.exec(path)?.[1] : undefined;
      if (identity !== undefined) return identityAnswer(decodeURIComponent(identity), identities);
      const sending = method === 'PUT' ? CONFIGURATION_SET_SENDING_PATH.exec(path)?.[1] : undefined;
      if (sending !== undefined) return configurationSets.putSending(decodeURIComponent(sending), body);
      const name = method === 'GET' ? CONFIGURATION_SET_PATH.exec(path)?.[1] : undefined;
      return name === undefined ? undefined : configurationSets.answer(decodeURIComponent(name));
    },
  );
  return {
    endpoint: front.endpoint,
    inboxUrl: inbox.url,
    stop: async () => {
      await front.stop();
      await inbox.stop();
      await closeServer(server);
    },
  };
}

const SEND_EMAIL_PATH = '/v2/email/outbound-emails';
const IDENTITIES_PATH = '/v2/email/identities';
const JSON_HEADERS = { 'content-type': 'application/json' };

/** An SES v2 error answer: the SDK reads the error's name from `x-amzn-errortype`. */
const sesError = (status: number, type: string, message: string): LocalAnswer => ({
  status,
  headers: { ...JSON_HEADERS, 'x-amzn-errortype': type },
  body: JSON.stringify({ message }),
});

/** The identities of a sandboxed account: lower-case addresses and domains. */
class SandboxIdentities {
  private readonly verified: Set<string>;

  constructor(verified: readonly string[]) {
    this.verified = new Set(verified.map((identity) => identity.toLowerCase()));
  }

  /** SES v2 CreateEmailIdentity: an address or a domain, verified at once. */
  create(body: Buffer): LocalAnswer {
    const identity = readJson<{ EmailIdentity?: unknown }>(body)?.EmailIdentity;
    if (typeof identity !== 'string' || identity.length === 0)
      return sesError(400, 'BadRequestException', 'EmailIdentity is required.');
    this.verified.add(identity.toLowerCase());
    return {
      status: 200,
      headers: JSON_HEADERS,
      body: JSON.stringify({
        IdentityType: identity.includes('@') ? 'EMAIL_ADDRESS' : 'DOMAIN',
        VerifiedForSendingStatus: true,
      }),
    };
  }

  /** SES's refusal of an email to or from an unverified identity, in its words; undefined lets it through. */
  refusal(call: SendEmailCall): LocalAnswer | undefined {
    const addresses = [
      call.FromEmailAddress ?? '',
      ...(call.Destination?.ToAddresses ?? []),
      ...(call.Destination?.CcAddresses ?? []),
      ...(call.Destination?.BccAddresses ?? []),
    ];
    const failed = addresses.filter((address) => !this.isVerified(address));
    if (failed.length === 0) return undefined;
    return sesError(
      400,
      'MessageRejected',
      `Email address is not verified. The following identities failed the check in region ${LOCAL_REGION.toUpperCase()}: ${failed.join(', ')}`,
    );
  }

  private isVerified(address: string): boolean {
    // A display name (`Name <a@b>`) carries the address between angle brackets.
    const bare = (/<([^>]+)>\s*$/.exec(address)?.[1] ?? address).trim().toLowerCase();
    return this.verified.has(bare) || this.verified.has(bare.slice(bare.lastIndexOf('@') + 1));
  }
}

function readJson<T>(body: Buffer): T | undefined {
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

/** What this module reads of a v2 SendEmail call. */
interface SendEmailCall {
  FromEmailAddress?: string;
  Destination?: { ToAddresses?: string[]; CcAddresses?: string[]; BccAddresses?: string[] };
  ConfigurationSetName?: string;
  EmailTags?: { Name: string; Value: string }[];
  Content?: {
    Raw?: { Data?: string };
    Simple?: {
      Subject?: { Data?: string };
      Body?: { Text?: { Data?: string }; Html?: { Data?: string } };
      Headers?: { Name: string; Value: string }[];
    };
  };
}
const CONFIGURATION_SET_SENDING_PATH = /^\/v2\/email\/configuration-sets\/([^/]+)\/sending$/;
const CONFIGURATION_SET_PATH = /^\/v2\/email\/configuration-sets\/([^/?]+)$/;
const IDENTITY_PATH = /^\/v2\/email\/identities\/([^/?]+)$/;

/** SES v2 GetEmailIdentity: an identity of the template, verified as if its DNS records were published. */
function identityAnswer(name: string, known: ReadonlyMap<string, LocalIdentity>): LocalAnswer {
  const identity = known.get(name.toLowerCase());
  if (!identity) return sesError(404, 'NotFoundException', `Email identity <${name}> does not exist.`);
  const domain = !name.includes('@');
  return {
    status: 200,
    headers: JSON_HEADERS,
    body: JSON.stringify({
      IdentityType: domain ? 'DOMAIN' : 'EMAIL_ADDRESS',
      VerifiedForSendingStatus: true,
      VerificationStatus: 'SUCCESS',
      FeedbackForwardingStatus: true,
      DkimAttributes: {
        SigningEnabled: true,
        Status: 'SUCCESS',
        SigningAttributesOrigin: 'AWS_SES',
        NextSigningKeyLength: 'RSA_2048_BIT',
        CurrentSigningKeyLength: 'RSA_2048_BIT',
        Tokens: ['local1', 'local2', 'local3'],
      },
      ...(identity.mailFromDomain
        ? {
            MailFromAttributes: {
              MailFromDomain: identity.mailFromDomain,
              MailFromDomainStatus: 'SUCCESS',
              BehaviorOnMxFailure: 'USE_DEFAULT_VALUE',
            },
          }
        : {}),
    }),
  };
}

/**
 * The template's configuration sets, which the emulator knows nothing of, with their sending
 * switch: GetConfigurationSet answers a set's state, PutConfigurationSetSendingOptions turns its
 * sending off and on, and while it is off SES refuses every email sent with the set
 * (`SendingPausedException`), as it does when SES itself pauses a set.
 */
class ConfigurationSets {
  private readonly enabled: Map<string, boolean>;

  constructor(names: readonly string[]) {
    this.enabled = new Map(names.map((name) => [name, true]));
  }

  /** SES v2 GetConfigurationSet: a set of the template; any other name is SES's 404. */
  answer(name: string): LocalAnswer {
    const enabled = this.enabled.get(name);
    if (enabled === undefined)
      return sesError(404, 'NotFoundException', `Configuration set <${name}> does not exist.`);
    return {
      status: 200,
      headers: JSON_HEADERS,
      body: JSON.stringify({
        ConfigurationSetName: name,
        SendingOptions: { SendingEnabled: enabled },
        ReputationOptions: { ReputationMetricsEnabled: true },
      }),
    };
  }

  /** SES v2 PutConfigurationSetSendingOptions: `{"SendingEnabled": bool}`. */
  putSending(name: string, body: Buffer): LocalAnswer {
    if (!this.enabled.has(name))
      return sesError(404, 'NotFoundException', `Configuration set <${name}> does not exist.`);
    const enabled = readJson<{ SendingEnabled?: unknown }>(body)?.SendingEnabled;
    this.enabled.set(name, enabled !== false);
    return { status: 200, headers: JSON_HEADERS, body: '{}' };
  }

  /** SES's refusal of an email sent with a set whose sending is off; undefined lets it through. */
  refusal(call: SendEmailCall): LocalAnswer | undefined {
    const name = call.ConfigurationSetName;
    if (name === undefined || this.enabled.get(name) !== false) return undefined;
    return sesError(400, 'SendingPausedException', `Sending is paused for configuration set <${name}>.`);
  }
}

/**
 * A send with raw content, or simple content with a subject and a body, from and to addresses
 * given as strings: what this front takes itself. Anything else (a template, attachments, a
 * malformed call) goes to the emulator, which answers it as before.
 */
function isPlainSend(call: SendEmailCall): boolean {
  const strings = (values: unknown) =>
    values === undefined || (Array.isArray(values) && values.every((value) => typeof value === 'string'));
  const filled = (value: unknown) => typeof value === 'string' && value.length > 0;
  /** Name and value pairs (headers, tags), as SES takes them. */
  const pairs = (values: unknown) =>
    values === undefined ||
    (Array.isArray(values) &&
      values.every((pair) => typeof pair?.Name === 'string' && typeof pair?.Value === 'string'));
  const { Raw, Simple } = call.Content ?? {};
  // Raw content names its sender in its From header; simple content needs FromEmailAddress. What
  // lacks one (or has an empty subject, body or message) is the emulator's to refuse, as SES does.
  const content =
    Raw !== undefined
      ? filled(Raw.Data) && Simple === undefined
      : Simple !== undefined &&
        filled(call.FromEmailAddress) &&
        filled(Simple.Subject?.Data) &&
        (filled(Simple.Body?.Text?.Data) || filled(Simple.Body?.Html?.Data)) &&
        pairs((Simple as { Headers?: unknown }).Headers) &&
        (Simple as { Attachments?: unknown }).Attachments === undefined;
  return (
    content &&
    pairs((call as { EmailTags?: unknown }).EmailTags) &&
    (call.FromEmailAddress === undefined || typeof call.FromEmailAddress === 'string') &&
    strings(call.Destination?.ToAddresses) &&
    strings(call.Destination?.CcAddresses) &&
    strings(call.Destination?.BccAddresses)
  );
}

/** A message id in SES's shape (`0100018c…-<uuid>-000000`), unique as SES's are. */
const sesMessageId = () => `${Date.now().toString(16).padStart(16, '0')}-${randomUUID()}-000000`;

/** The send a v2 SendEmail call made, under the message id SES gave it. */
function takenSend(call: SendEmailCall, messageId: string): TakenSend {
  const simple = call.Content?.Simple;
  const raw = call.Content?.Raw?.Data;
  return {
    messageId,
    at: new Date().toISOString(),
    from: call.FromEmailAddress ?? '',
    destination: {
      to: call.Destination?.ToAddresses ?? [],
      cc: call.Destination?.CcAddresses ?? [],
      bcc: call.Destination?.BccAddresses ?? [],
    },
    ...(raw ? { raw: Buffer.from(raw, 'base64') } : {}),
    ...(simple
      ? {
          simple: {
            subject: simple.Subject?.Data ?? '',
            ...(simple.Body?.Text?.Data === undefined ? {} : { text: simple.Body.Text.Data }),
            ...(simple.Body?.Html?.Data === undefined ? {} : { html: simple.Body.Html.Data }),
            headers: (simple.Headers ?? []).map(({ Name, Value }) => ({ name: Name, value: Value })),
          },
        }
      : {}),
  };
}

/** The address of `Name <address>`, or the whole when there are no angle brackets. */
const bareAddress = (address: string) => (/<([^>]*)>\s*$/.exec(address)?.[1] ?? address).trim();

/**
 * What SES's event publishing tells of an email: the envelope's addresses, the subject, the set and
 * the tags. A raw message's sender and subject are read from its headers, not parsed whole: the
 * inbox parses it only when it is read.
 */
function sentEmail(send: TakenSend, call: SendEmailCall): SentEmail {
  return {
    messageId: send.messageId,
    timestamp: send.at,
    from: bareAddress(send.from || (send.raw ? (headerValue(send.raw, 'From') ?? '') : '')),
    to: send.destination.to,
    cc: send.destination.cc,
    bcc: send.destination.bcc,
    subject: send.simple?.subject ?? (send.raw ? (headerValue(send.raw, 'Subject') ?? '') : ''),
    configurationSet: call.ConfigurationSetName,
    tags: Object.fromEntries((call.EmailTags ?? []).map((tag) => [tag.Name, tag.Value])),
  };
}

export function sesClient(endpoint: string): SESv2Client {
  return new SESv2Client({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
}

/** Every email the local SES has received, oldest first. */
export async function readInbox(inboxUrl: string): Promise<InboxEmail[]> {
  const response = await fetch(`${inboxUrl}/messages`);
  if (!response.ok) throw new Error(`Local inbox answered ${response.status}`);
  const { emails } = (await response.json()) as { emails: InboxEmail[] };
  return emails;
}

/** Empties the inbox of the local SES. */
export async function clearInbox(inboxUrl: string): Promise<void> {
  const response = await fetch(`${inboxUrl}/clear`, { method: 'POST' });
  if (!response.ok) throw new Error(`Local inbox clear answered ${response.status}`);
}

/** GetAccount's answer, in the shape the package validates (dist/v2/getAccount.js). */
function localAccount(maxSendRate: number, sandbox: boolean) {
  return {
    DedicatedIpAutoWarmupEnabled: false,
    Details: {
      AdditionalContactEmailAddresses: [],
      ContactLanguage: 'EN',
      MailType: 'MARKETING',
      ReviewDetails: { CaseId: 'local', Status: 'GRANTED' },
      UseCaseDescription: 'nonprofit-mailer running locally: nothing is delivered',
      WebsiteURL: 'http://nonprofit-mailer.localhost',
    },
    EnforcementStatus: 'HEALTHY',
    ProductionAccessEnabled: !sandbox,
    SendingEnabled: true,
    SendQuota: { Max24HourSend: 1_000_000, MaxSendRate: maxSendRate, SentLast24Hours: 0 },
    SuppressionAttributes: { SuppressedReasons: ['BOUNCE', 'COMPLAINT'] },
  };
}
