import type { Node } from 'constructs';
import { z } from 'zod';
import { SCOPES } from '../lambdas/core/auth/scopes';
import { describeIssues } from '../lambdas/core/env';

/** A stored rendered email is one DynamoDB item (400 KB at most, keys and attribute names included). */
const MAX_STORED_EMAIL_BYTES = 380_000;

/** A yes/no setting: JSON's boolean from cdk.json, or the string `-c key=true` gives. */
const flag = z.union([z.boolean(), z.enum(['true', 'false']).transform((value) => value === 'true')]);

/** A domain name as SES and DNS take it: labels of letters, digits and hyphens, a dot between them. */
const domainName = z
  .string()
  .max(253)
  .regex(
    /^(?=.{1,253}$)((?!-)[a-z0-9-]{1,63}(?<!-)\.)+[a-z]{2,63}$/i,
    'Must be a domain name such as example.org',
  )
  .transform((domain) => domain.toLowerCase());

/** Keys the stack may declare: each is about 80 bytes of the authorizer's 4 KB environment. */
export const MAX_API_KEYS = 25;

/** What tells a key name apart (construct ids are made of it): letters and digits, ignoring case. */
export const apiKeyIdOf = (name: string) => name.toLowerCase().replaceAll('-', '');

/**
 * The API keys the stack creates, each with a name and the scopes it holds (see `SCOPES`): JSON from
 * cdk.json, or a string of it from `-c 'apiKeys=[…]'`. Names are unique; every scope is a known one.
 */
const apiKeys = z
  .unknown()
  .transform((value, context) => {
    if (typeof value !== 'string') return value;
    try {
      return JSON.parse(value) as unknown;
    } catch {
      context.addIssue({ code: 'custom', message: 'Must be a JSON list of {"name", "scopes"}' });
      return z.NEVER;
    }
  })
  .pipe(
    z
      .array(
        z.strictObject({
          name: z.string().regex(/^[A-Za-z0-9-]{1,40}$/, 'Must be 1 to 40 letters, digits or hyphens'),
          /**
           * A key that exists already (made by hand in API Gateway and added to the usage plan, as
           * earlier versions asked): the stack adopts it by id, with these scopes, and leaves it in place.
           */
          id: z
            .string()
            .regex(/^[a-z0-9]{10}$/, 'Must be an API Gateway key id (ten lower-case letters and digits)')
            .optional(),
          scopes: z
            .array(
              z.enum(SCOPES, {
                error: (issue) => `Unknown scope ${JSON.stringify(issue.input)}: one of ${SCOPES.join(', ')}`,
              }),
            )
            .min(1, 'A key needs at least one scope'),
        }),
      )
      .min(1, 'The stack needs at least one API key')
      // Each key's id, name and scopes ride in the authorizer's environment (4 KB in all).
      .max(MAX_API_KEYS, `At most ${MAX_API_KEYS} keys: the authorizer's environment holds them all`)
      .superRefine((keys, context) => {
        // Names become construct ids: letter case and hyphens do not tell two apart.
        const seen = new Set<string>();
        for (const [index, { name }] of keys.entries()) {
          const id = apiKeyIdOf(name);
          if (seen.has(id))
            context.addIssue({
              code: 'custom',
              path: [index, 'name'],
              message: `Duplicate key name ${name}`,
            });
          seen.add(id);
        }
      }),
  );

/** A value the footer of every email shows: one line, no control characters, at most 200 characters. */
const footerValue = (key: string) =>
  z
    .string()
    .trim()
    .min(1, `${key} must not be empty`)
    .max(200, 'Must be at most 200 characters')
    .regex(/^[^\p{Cc}\u2028\u2029]+$/u, 'Must be one line without control characters');

/**
 * Deployment settings, read from CDK context (`cdk.json`, or `-c key=value` on the command line,
 * which arrives as a string and is coerced). The local runtime reads the synthesized template, so
 * these values reach it through the template and are never repeated there.
 */
export const configSchema = z
  .object({
    /** Steady requests per second each API key may make. */
    usagePlanRateLimit: z.coerce.number().positive().default(50),
    /** Requests each API key may make at once, above the steady rate (the token bucket's size). */
    usagePlanBurstLimit: z.coerce.number().int().nonnegative().default(100),
    /**
     * The API keys, each with its scopes: `send`, `registry:read`, `registry:write`,
     * `suppressions:read`, `suppressions:write`, `operator` (everything). Default: one operator key.
     */
    apiKeys: apiKeys.default([{ name: 'operator', scopes: ['operator'] }]),
    /** Seconds API Gateway keeps an authorizer's answer for a key and route (0 asks every request). */
    authorizerCacheSeconds: z.coerce.number().int().min(0).max(3600).default(300),
    /**
     * The reputation guard: over the last `reputationWindowHours` (and at least
     * `reputationMinVolume` emails), a hard-bounce rate of `pauseBounceRate` or a complaint rate of
     * `pauseComplaintRate` turns the stack's configuration set off until an operator resumes it.
     * SES reviews an account at 5 % and 0.1 %.
     */
    reputationWindowHours: z.coerce.number().int().min(1).max(48).default(24),
    /**
     * Seconds an email waits in the queue before it is tried again while SES refuses to send
     * (sending paused, by SES or the guard): it doubles with each wait, up to SQS's 15 minutes.
     */
    sendingPausedWaitSeconds: z.coerce.number().int().min(1).max(900).default(60),
    reputationMinVolume: z.coerce.number().int().min(1).default(500),
    pauseBounceRate: z.coerce.number().positive().max(1).default(0.02),
    pauseComplaintRate: z.coerce.number().positive().max(1).default(0.0008),
    /** Requests each API key may make per day. */
    usagePlanQuotaPerDay: z.coerce.number().int().positive().default(100_000),
    /**
     * Recipients each API key may send to per UTC day, cc copies included: counted when a job is
     * accepted, given back for recipients a cancel kept from being sent.
     */
    recipientQuotaPerDay: z.coerce.number().int().positive().default(100_000),
    /**
     * Steady requests per second each method of the stage takes, all keys together (API Gateway
     * applies a stage's default throttle per method): a ceiling that keeps one API from using the
     * account's shared limit.
     */
    stageRateLimit: z.coerce.number().positive().default(500),
    /** Burst each method of the stage takes, all keys together. */
    stageBurstLimit: z.coerce.number().int().nonnegative().default(1000),
    /** `POST /send-email` requests each API key may make per minute (the original API allowed 5). */
    sendEmailRequestsPerMinute: z.coerce.number().positive().default(5),
    /** `POST /send-email` requests each API key may make at once. */
    sendEmailBurstLimit: z.coerce.number().int().nonnegative().default(5),
    /** `POST /send-email/preview` requests each API key may make per second (each may read 10,000 nonprofits), and at once. */
    previewRequestsPerSecond: z.coerce.number().positive().default(1),
    previewBurstLimit: z.coerce.number().int().nonnegative().default(5),
    /** `POST /nonprofits/import` requests each API key may make per second (each may write 1,000 nonprofits), and at once. */
    importRequestsPerSecond: z.coerce.number().positive().default(0.5),
    importBurstLimit: z.coerce.number().int().nonnegative().default(2),
    /** Messages the consumer takes per invocation. */
    consumerBatchSize: z.coerce.number().int().min(1).max(10_000).default(10),
    /** Seconds the event source waits to fill a batch. */
    consumerBatchingWindowSeconds: z.coerce.number().int().min(0).max(300).default(1),
    /** Consumer invocations at once (2 to 1,000, as Lambda allows). */
    consumerMaxConcurrency: z.coerce.number().int().min(2).max(1000).default(10),
    /**
     * The consumer's memory. It waits on SES, DynamoDB and its pacer far more than it computes, and
     * Lambda bills the wait by memory: 192 MB is a ninth of a vCPU, enough for its ten sends a second
     * (a few milliseconds of CPU each), with room for a batch of a hundred emails rendered at once.
     */
    consumerMemoryMb: z.coerce.number().int().min(128).max(10_240).default(192),
    /** Seconds a consumer invocation may take; the queue's visibility timeout is six times this. */
    consumerTimeoutSeconds: z.coerce.number().int().min(1).max(900).default(30),
    /**
     * Seconds the deliveries table's stream gathers outcomes before they are added to their jobs'
     * counters: each gathering costs a transaction per job (about 8 write units), so a longer one is
     * cheaper per email, and a job's counters and its end show that much later.
     */
    countingWindowSeconds: z.coerce.number().int().min(0).max(300).default(5),
    /** Receives of one message before it moves to the dead-letter queue (at least 5, as AWS advises). */
    maxReceiveCount: z.coerce.number().int().min(5).max(1000).default(5),
    /** Minutes between sweeper runs (each costs two queue reads and one index query when jobs run). */
    sweeperRateMinutes: z.coerce.number().int().min(1).max(1440).default(1),
    /**
     * Seconds after a job's last enqueue before the queues' approximate counts are trusted to include
     * its messages (AWS: they settle about a minute after sends stop). The sweeper re-enqueues a job's
     * unsent recipients only when both queues are empty and this long has passed.
     */
    sweeperQueueSettleSeconds: z.coerce.number().int().min(0).max(3600).default(60),
    /**
     * Seconds nothing may have been counted on a running job whose every recipient has an outcome
     * before the sweeper sets its counters from the ledger (an outcome's stream record was lost).
     * Also the `OutcomeCountingBehind` alarm's threshold, so a counter that is only slow raises its
     * alarm first and is not pre-empted.
     */
    ledgerCountAfterSeconds: z.coerce.number().int().min(30).max(86_400).default(300),
    /**
     * Seconds one `/health` report is reused by an execution environment: load balancers polling
     * every few seconds cost one probe of each service per environment in that time.
     */
    healthCacheSeconds: z.coerce.number().int().min(0).max(300).default(5),
    /** Where alarms are emailed; unset, subscribe to the alarm topic some other way. */
    alarmEmail: z.email().optional(),
    /** Alarm when the oldest email waiting in the queue is older than this. */
    alarmOldestMessageSeconds: z.coerce.number().int().min(60).default(900),
    /** Alarm when more than this percentage of API requests fail with a 5xx over 5 minutes. */
    alarmApi5xxPercent: z.coerce.number().positive().max(100).default(1),
    /** `ses` delivers through Amazon SES; `record` only keeps the rendered emails in the ledger. */
    transport: z.enum(['ses', 'record']).default('ses'),
    /** The verified SES identity emails are sent from (required with the `ses` transport). */
    fromAddress: z.email({ message: 'Must be an email address' }).optional(),
    /**
     * The domain emails are sent from (`fromAddress` must be in it): the stack creates its SES
     * identity with Easy DKIM and a custom MAIL FROM domain, and outputs the DNS records to publish.
     * Unset, `fromAddress` must be an identity verified by hand.
     */
    senderDomain: domainName.optional(),
    /** The MAIL FROM (bounce) subdomain of `senderDomain`: SPF then aligns with it for DMARC. */
    mailFromSubdomain: z
      .string()
      .regex(/^(?!-)[a-z0-9-]{1,63}(?<!-)$/i, 'Must be one DNS label (letters, digits, hyphens)')
      .default('mail'),
    /** Where DMARC aggregate reports go: the suggested DMARC record asks for them (`rua`). */
    dmarcReportAddress: z.email({ message: 'Must be an email address' }).optional(),
    /**
     * Whether the stack publishes its suggested DMARC record in `hostedZoneId`: false when the domain
     * has a DMARC record already (Route 53 refuses a second one and the deploy fails).
     */
    publishDmarc: flag.default(true),
    /** A Route 53 public hosted zone of `senderDomain`: the stack then publishes the records itself. */
    hostedZoneId: z
      .string()
      .regex(/^Z[A-Z0-9]{1,31}$/, 'Must be a Route 53 hosted zone id (Z followed by letters and digits)')
      .optional(),
    /** Who sends, as the footer of every email names them (the organisation's name). */
    senderName: footerValue('senderName').optional(),
    /**
     * The sender's valid postal address, shown in every email's footer (CAN-SPAM asks for it in each
     * commercial email): required with the `ses` transport.
     */
    senderPostalAddress: footerValue('senderPostalAddress').optional(),
    /** Where replies go, if not to `fromAddress`. */
    replyTo: z.email({ message: 'Must be an email address' }).optional(),
    /**
     * The API's public base URL, stage included (`https://mail-api.example.org/v1`), when it is served
     * under a custom domain: unsubscribe links point there. Unset, they point at the stage's own URL.
     */
    publicApiUrl: z
      .url({ protocol: /^https$/, message: 'Must be an https:// URL' })
      // SES takes at most 870 characters in a header: this URL, a token and the mailto must fit.
      .max(100, 'Must be at most 100 characters (it goes in a header SES limits)')
      .transform((url) => url.replace(/\/+$/, ''))
      .optional(),
    /**
     * An existing EventBridge bus to tell the stack's events on (`default`, or one of your own, by
     * name). Unset, the stack creates its own bus.
     */
    eventBusName: z
      .string()
      .regex(/^[A-Za-z0-9._\-/]{1,256}$/, 'Must be an EventBridge event bus name')
      .optional(),
    /** A mailbox that takes unsubscribe requests too: emails then offer it beside the one-click link. */
    unsubscribeMailto: z
      .email({ message: 'Must be an email address' })
      .max(100, 'Must be at most 100 characters (it goes in a header SES limits)')
      .optional(),
    /**
     * A WAF web ACL in front of the stage (AWS managed rule groups, per-IP rate-based rules, redacted
     * logs). `false` for an API already behind an ACL of your own.
     */
    waf: flag.default(true),
    /**
     * Requests one client address may make to the API in each `wafRateWindowSeconds` before WAF
     * answers it 429: 100 a second by default, above the usage plan's rate, so the plan binds first.
     */
    wafRequestsPerIp: z.coerce.number().int().min(10).max(2_000_000_000).default(6000),
    /**
     * Requests one client address may make to `/unsubscribe` in each window: below the stage's
     * `unsubscribeBurstLimit`, so no one address can drain the bucket a real one-click POST needs.
     * Mailbox providers send one-click POSTs from their own servers: a very large list whose
     * unsubscribes arrive from a few provider addresses may need it raised.
     */
    wafUnsubscribeRequestsPerIp: z.coerce.number().int().min(10).max(2_000_000_000).default(20),
    /** The window WAF's rate-based rules count requests in, in seconds (60, 120, 300 or 600). */
    wafRateWindowSeconds: z.coerce
      .number()
      .refine((value) => [60, 120, 300, 600].includes(value), 'Must be 60, 120, 300 or 600')
      .default(60),
    /**
     * Concurrent executions reserved for (and the most taken by) each function of a public route
     * (`/unsubscribe`, `GET /health`, `/openapi.json`): a flood of them cannot take the account's
     * concurrency from the consumer. 0 reserves none (an account whose Lambda concurrency limit is
     * 10, as new accounts' may be, cannot reserve any).
     */
    publicFunctionConcurrency: z.coerce.number().int().min(0).max(1000).default(5),
    /** Requests per second, and burst, the public unsubscribe routes take from everyone together. */
    unsubscribeRateLimit: z.coerce.number().positive().default(20),
    unsubscribeBurstLimit: z.coerce.number().int().positive().default(40),
    /**
     * Days between rotations of the secret unsubscribe links are sealed with. A link is accepted
     * under the current and the previous version, so it works for at least one period after it was
     * sent, less the rotation's two-hour window: at least 31, so a link always works 30 days, as
     * CAN-SPAM asks of an opt-out mechanism.
     */
    unsubscribeSecretRotationDays: z.coerce.number().int().min(31).max(1000).default(90),
    /**
     * An existing SES configuration set to send with (dedicated IPs, destinations of your own): the
     * stack adds its bounce and complaint destination to it. Unset, the stack creates its own set.
     */
    sesConfigurationSet: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'Must be an SES configuration set name')
      .optional(),
    /**
     * Recipients per second SES allows this account (its sending quota's maximum send rate; 1 in the
     * sandbox, 14 at first in production). The consumers together never exceed it: cc copies count.
     */
    sesMaxSendRate: z.coerce.number().positive().max(10_000).default(14),
    /**
     * Whether the account is still in the SES sandbox, where SES also authorizes each send against
     * the recipient's identity: the consumer may then send (still only as `fromAddress`) to any
     * identity, so an unverified recipient is refused by SES for itself (MessageRejected) rather
     * than by IAM for the whole batch.
     */
    sesSandbox: flag.default(false),
    /** Subject of the emails of a job submitted without one (SES requires a subject). */
    defaultSubject: z
      .string()
      .min(1)
      .max(998)
      // It becomes an email header: one line.
      .regex(/^[^\p{Cc}\u2028\u2029]+$/u, 'Must be one line without control characters')
      .default('(no subject)'),
    /** The largest rendered email (subject, text and HTML parts and footer, UTF-8 bytes) a job may produce, in the worst case. */
    maxRenderedEmailBytes: z.coerce
      .number()
      .int()
      .min(1024)
      .max(10_000_000)
      .default(256 * 1024),
    /** Whether each rendered subject and body is kept for `GET /jobs/{id}/emails` (personal data, most of the cost). */
    storeRenderedEmails: flag.default(true),
    /**
     * A KMS key of your own (its key ARN) for the tables and queues that hold addresses. Unset, the
     * stack creates one, with yearly rotation, kept when the stack is deleted.
     */
    dataKeyArn: z
      .string()
      .regex(
        /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/,
        'Must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), not an alias',
      )
      .optional(),
    /** Days a stored rendered email is kept before DynamoDB's TTL removes it. */
    renderedEmailRetentionDays: z.coerce.number().int().min(1).max(3650).default(30),
    /**
     * Days a job's ledger (each email's outcome, cc, message id and feedback), its recipient list and
     * its content (template, subject, cc) are kept, from its start; DynamoDB's TTL removes them then.
     */
    ledgerRetentionDays: z.coerce.number().int().min(7).max(3650).default(90),
    /** Days a job's summary (status and counts, no addresses) is kept, from its start. */
    jobRetentionDays: z.coerce.number().int().min(7).max(3650).default(400),
    /** Days an audit record (a change to the registry, the suppression list or the sender) is kept. */
    auditRetentionDays: z.coerce.number().int().min(30).max(3650).default(400),
    /**
     * Seconds between an erasure's looks at the jobs that were running when it started: it walks
     * the tables once they have ended (their queued emails may still name the address).
     */
    erasureRecheckSeconds: z.coerce.number().int().min(1).max(900).default(60),
  })
  .superRefine((config, context) => {
    if (config.storeRenderedEmails && config.maxRenderedEmailBytes > MAX_STORED_EMAIL_BYTES) {
      context.addIssue({
        code: 'custom',
        path: ['maxRenderedEmailBytes'],
        message: `At most ${MAX_STORED_EMAIL_BYTES} while storeRenderedEmails is on (a DynamoDB item holds 400 KB)`,
      });
    }
    if (config.jobRetentionDays < config.ledgerRetentionDays) {
      context.addIssue({
        code: 'custom',
        path: ['jobRetentionDays'],
        message: `At least ledgerRetentionDays (${config.ledgerRetentionDays}): a job's emails are never kept longer than the job`,
      });
    }
    if (config.renderedEmailRetentionDays > config.ledgerRetentionDays) {
      context.addIssue({
        code: 'custom',
        path: ['renderedEmailRetentionDays'],
        message: `At most ledgerRetentionDays (${config.ledgerRetentionDays}): what an email was rendered from goes no later than its ledger entry`,
      });
    }
    if (config.transport === 'ses' && !config.fromAddress) {
      context.addIssue({
        code: 'custom',
        path: ['fromAddress'],
        message:
          'Required with the ses transport: pass -c fromAddress=you@your-verified-domain (an SES verified identity), or -c transport=record to only record emails',
      });
    }
    if (config.senderDomain && config.fromAddress) {
      const domain = config.fromAddress.slice(config.fromAddress.lastIndexOf('@') + 1).toLowerCase();
      if (domain !== config.senderDomain) {
        context.addIssue({
          code: 'custom',
          path: ['fromAddress'],
          message: `Must be an address of senderDomain (${config.senderDomain}): SES sends from the identity the stack creates for it`,
        });
      }
    }
    if (config.hostedZoneId && !config.senderDomain) {
      context.addIssue({
        code: 'custom',
        path: ['hostedZoneId'],
        message: 'Needs senderDomain: the zone is where the records of that domain are published',
      });
    }
    if (config.transport === 'ses' && !config.senderPostalAddress) {
      context.addIssue({
        code: 'custom',
        path: ['senderPostalAddress'],
        message:
          "Required with the ses transport: every email's footer shows the sender's postal address (CAN-SPAM); pass -c senderPostalAddress='1 Main St, Springfield, ST 12345'",
      });
    }
  });

export type MailerConfig = z.output<typeof configSchema>;
export const CONFIG_KEYS = Object.keys(configSchema.shape) as (keyof MailerConfig)[];

export function readConfig(node: Node): MailerConfig {
  const raw = Object.fromEntries(CONFIG_KEYS.map((key) => [key, node.tryGetContext(key)]));
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new Error(`Invalid CDK context: ${describeIssues(result.error)}`);
  }
  return result.data;
}
