import { SCOPES } from './auth/scopes';
import { describeIssues } from './env';
import * as z from './zod';

/**
 * The plain settings a function may be given (values, not resources: resources are bound in
 * `bindings.ts`), each declared once with its variable and its type. The stack sets a setting
 * through its declaration (`ProjectFunction.setting`), which checks the value at synthesis; a
 * handler reads it through the same declaration (`readSettings`), which fails at cold start,
 * naming the variable, when it is missing or malformed. A misspelled name cannot compile on either side.
 */
export interface Setting<S extends z.ZodType = z.ZodType> {
  variable: string;
  schema: S;
}

const setting = <S extends z.ZodType>(variable: string, schema: S): Setting<S> => ({ variable, schema });

const count = z.coerce.number().int().positive();
const flag = z.enum(['true', 'false']).transform((value) => value === 'true');

export const SETTING = {
  /** Which transport sends: SES, or only recording (`record`). */
  emailTransport: setting('EMAIL_TRANSPORT', z.enum(['ses', 'record'])),
  /** The verified SES identity emails come from (required with SES). */
  sesFromAddress: setting('SES_FROM_ADDRESS', z.email().optional()),
  sesReplyTo: setting('SES_REPLY_TO', z.email().optional()),
  /** The configuration set SES sends with (its events feed bounces and complaints back). */
  sesConfigurationSet: setting('SES_CONFIGURATION_SET', z.string().min(1).optional()),
  /** The SES identity the stack created for the sending domain: /health reports its verification. */
  senderIdentity: setting('SENDER_IDENTITY', z.string().min(1).optional()),
  /** How long a consumer's claim on a recipient lasts before another may take it. */
  claimLeaseSeconds: setting('CLAIM_LEASE_SECONDS', count.optional()),
  /** This execution environment's share of SES's send rate. */
  sendRatePerEnvironment: setting('SEND_RATE_PER_ENVIRONMENT', z.coerce.number().positive().optional()),
  maxRenderedEmailBytes: setting('MAX_RENDERED_EMAIL_BYTES', count),
  defaultSubject: setting('DEFAULT_SUBJECT', z.string().min(1)),
  /** Who sends, as every email's footer names them (CAN-SPAM asks for a postal address in each). */
  senderName: setting('SENDER_NAME', z.string().min(1).optional()),
  senderPostalAddress: setting('SENDER_POSTAL_ADDRESS', z.string().min(1).optional()),
  storeRenderedEmails: setting('STORE_RENDERED_EMAILS', flag),
  renderedEmailRetentionDays: setting('RENDERED_EMAIL_RETENTION_DAYS', count.optional()),
  /** Days a job's ledger (its deliveries) and recipient lists are kept before DynamoDB's TTL removes them. */
  ledgerRetentionDays: setting('LEDGER_RETENTION_DAYS', count.optional()),
  /** Days a job's summary (counts, no addresses) is kept. */
  jobRetentionDays: setting('JOB_RETENTION_DAYS', count.optional()),
  /** Days an audit record is kept before DynamoDB's TTL removes it (core/audit). */
  auditRetentionDays: setting('AUDIT_RETENTION_DAYS', count),
  recipientQuotaPerDay: setting('RECIPIENT_QUOTA_PER_DAY', count),
  usagePlanRateLimit: setting('USAGE_PLAN_RATE_LIMIT', z.coerce.number().positive()),
  usagePlanBurstLimit: setting('USAGE_PLAN_BURST_LIMIT', z.coerce.number().int().nonnegative()),
  usagePlanQuotaPerDay: setting('USAGE_PLAN_QUOTA_PER_DAY', count),
  sweeperQueueSettleSeconds: setting('SWEEPER_QUEUE_SETTLE_SECONDS', z.coerce.number().int().min(0)),
  /** How long a job's counting must be still before the sweeper counts it from its ledger. */
  ledgerCountAfterSeconds: setting('LEDGER_COUNT_AFTER_SECONDS', count),
  alarmNamePrefix: setting('ALARM_NAME_PREFIX', z.string().min(1)),
  serviceVersion: setting('SERVICE_VERSION', z.string().min(1)),
  healthCacheSeconds: setting('HEALTH_CACHE_SECONDS', z.coerce.number().int().min(0).default(5)),
  /** The public base of the unsubscribe links (the API's `/unsubscribe`). */
  unsubscribeUrl: setting('UNSUBSCRIBE_URL', z.url({ protocol: /^https?$/ })),
  unsubscribeMailto: setting('UNSUBSCRIBE_MAILTO', z.email().optional()),
  /** The secret that signs unsubscribe links (bound with its read grant, `ProjectFunction.bindSecret`). */
  unsubscribeSecretArn: setting('UNSUBSCRIBE_SECRET_ARN', z.string().min(1)),
  /** The secret erased addresses' keys are made with (core/people/address-keys; bound with its read grant). */
  addressKeySecretArn: setting('ADDRESS_KEY_SECRET_ARN', z.string().min(1)),
  /** Seconds between an erasure's looks at the jobs it waits out (`erasureRecheckSeconds`). */
  erasureRecheckSeconds: setting('ERASURE_RECHECK_SECONDS', z.coerce.number().int().min(1).max(900)),
  /** How long an email waits before it is tried again while sending is paused. */
  sendingPausedWaitSeconds: setting('SENDING_PAUSED_WAIT_SECONDS', count.optional()),
  /** The reputation guard's window and thresholds (see `sending/reputation.ts`). */
  /** The EventBridge bus the stack tells its facts on (its own, or the one `eventBusName` named). */
  eventBusName: setting('EVENT_BUS_NAME', z.string().min(1)),
  reputationWindowHours: setting('REPUTATION_WINDOW_HOURS', count),
  reputationMinVolume: setting('REPUTATION_MIN_VOLUME', count),
  pauseBounceRate: setting('PAUSE_BOUNCE_RATE', z.coerce.number().positive().max(1)),
  pauseComplaintRate: setting('PAUSE_COMPLAINT_RATE', z.coerce.number().positive().max(1)),
  /** The stack's API keys with their scopes, as JSON (`[{"id", "name", "scopes"}]`): what the authorizer allows. */
  apiKeys: setting(
    'API_KEYS',
    z
      .string()
      .transform((text, context) => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          context.addIssue({ code: 'custom', message: 'Must be JSON' });
          return undefined;
        }
      })
      .pipe(
        z
          .array(
            z.strictObject({
              id: z.string().min(1),
              name: z.string().min(1),
              scopes: z.array(z.enum(SCOPES)).min(1),
            }),
          )
          .min(1),
      ),
  ),
} as const;

type Settings = Record<string, Setting>;
export type SettingValues<T extends Settings> = { [K in keyof T]: z.output<T[K]['schema']> };

/**
 * Reads these settings from the environment, at cold start: every missing or malformed one is
 * named in one error, so a function the stack forgot to give a setting never starts.
 */
export function readSettings<T extends Settings>(
  settings: T,
  source: NodeJS.ProcessEnv = process.env,
): SettingValues<T> {
  const shape = Object.fromEntries(
    Object.values(settings).map((declared) => [declared.variable, declared.schema]),
  );
  const result = z.object(shape).safeParse(source);
  if (!result.success) throw new Error(`Invalid environment: ${describeIssues(result.error)}`);
  const values = result.data as Record<string, unknown>;
  return Object.fromEntries(
    Object.entries(settings).map(([key, declared]) => [key, values[declared.variable]]),
  ) as SettingValues<T>;
}

/**
 * Checks a value the stack is about to set, at synthesis; undefined when it is fine, else the
 * problem. Values only known at deployment (CloudFormation tokens) are the caller's to skip.
 */
export function settingProblem(declared: Setting, value: string): string | undefined {
  const result = declared.schema.safeParse(value);
  return result.success ? undefined : result.error.issues.map((issue) => issue.message).join('; ');
}
