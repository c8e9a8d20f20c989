import type { QueueDepth } from '../queue/queue-depth';

/**
 * GET /health and GET /health/details: whether the system works, from real calls to what it depends on, each with a short
 * timeout. DynamoDB or the queue failing makes it `unhealthy` (503): nothing can be accepted or
 * sent, and so does SES refusing to send (paused, suspended). A non-empty dead-letter queue or a firing alarm makes it `degraded` (200): it works, but
 * someone should look. Alarms that cannot be read (no CloudWatch locally) are `unknown` and do not
 * change the verdict.
 */

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

export interface HealthProbes {
  /** A real read of the registry table. */
  readDatabase(): Promise<void>;
  queueDepth(which: 'emails' | 'deadLetters'): Promise<QueueDepth>;
  /** Names of this system's alarms now in ALARM. */
  firingAlarms(): Promise<string[]>;
  /** Whether SES will send for this account (and configuration set); absent with the `record` transport. */
  sending?(): Promise<SendingState>;
  /** The sending domain's identity, when the stack created one (`senderDomain`). */
  identity?(): Promise<IdentityState>;
}

/** SES's verification states (GetEmailIdentity), for the identity itself, its DKIM and its MAIL FROM domain. */
export type VerificationState = 'PENDING' | 'SUCCESS' | 'FAILED' | 'TEMPORARY_FAILURE' | 'NOT_STARTED';

export interface IdentityState {
  name: string;
  /** Whether SES lets the identity send now. */
  verifiedForSending: boolean;
  verification?: VerificationState | undefined;
  dkim?: VerificationState | undefined;
  mailFrom?: VerificationState | undefined;
}

/** Whether SES sends, and why not. The quota is left out: /health answers anyone, without a key. */
export interface SendingState {
  enabled: boolean;
  /** Why not, when not: the account's enforcement status, or the configuration set paused. */
  reason?: string;
}

/**
 * Why a check could not be made: a stable code a monitor can match on. The error's own text (an
 * SDK's message, which may name accounts, roles and resources) goes to the logs, never to an answer.
 */
export type HealthProblemCode =
  | 'timeout'
  | 'access_denied'
  | 'not_found'
  | 'throttled'
  | 'unavailable'
  | 'unsupported'
  | 'failed';

/** A check that could not be made, for the logs: its code and the error's own message. */
export interface HealthProblem {
  check: keyof HealthReport['checks'];
  code: HealthProblemCode;
  message: string;
}

export interface HealthReport {
  status: HealthStatus;
  checks: {
    dynamodb: { status: 'ok' | 'error'; latency_ms: number; code?: HealthProblemCode };
    queue: {
      status: 'ok' | 'error';
      latency_ms: number;
      depth?: number;
      in_flight?: number;
      code?: HealthProblemCode;
    };
    dead_letter_queue: { status: 'ok' | 'warn' | 'error'; depth?: number; code?: HealthProblemCode };
    alarms: { status: 'ok' | 'warn' | 'unknown'; firing?: string[]; code?: HealthProblemCode };
    /** SES: `paused` means nothing can be sent (emails wait in the queue) and makes the system unhealthy. */
    sending?: { status: 'ok' | 'paused' | 'unknown'; reason?: string; code?: HealthProblemCode };
    /**
     * The sending domain: `pending` while SES waits for its DNS records (degraded: nothing can be
     * sent from it yet), `warn` when the domain sends but its MAIL FROM domain failed (degraded: SPF
     * is not aligned), `failed` once SES gave up on the domain's records (unhealthy).
     */
    identity?: {
      status: 'ok' | 'pending' | 'warn' | 'failed' | 'unknown';
      name?: string;
      verification?: string;
      dkim?: string;
      mail_from?: string;
      code?: HealthProblemCode;
    };
  };
  version: string;
  checked_at: string;
}

/** A check of the system: the report (`GET /health/details`), and what could not be checked, for the logs. */
export interface HealthCheck {
  report: HealthReport;
  problems: HealthProblem[];
}

/** What `GET /health` tells anyone, without a key: the verdict and when it was reached, nothing more. */
export const publicHealth = ({ status, checked_at }: HealthReport) => ({ status, checked_at });

const PROBE_TIMEOUT_MS = 2_000;

class ProbeTimeout extends Error {}

type Failure = { code: HealthProblemCode; message: string };

/** A stable code for what a probe threw: by the error's name, its HTTP status, or a network error's code. */
export function problemCode(error: unknown): HealthProblemCode {
  if (error instanceof ProbeTimeout) return 'timeout';
  const {
    name = '',
    code = '',
    $metadata,
  } = (error ?? {}) as {
    name?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const status = $metadata?.httpStatusCode ?? 0;
  if (/AccessDenied|Unauthorized|Forbidden|InvalidClientTokenId|ExpiredToken/i.test(name) || status === 403)
    return 'access_denied';
  if (
    /Throttl|TooManyRequests|RequestLimitExceeded|ProvisionedThroughputExceeded/i.test(name) ||
    status === 429
  )
    return 'throttled';
  if (/NotFound|NonExistent|DoesNotExist/i.test(name) || status === 404) return 'not_found';
  if (/UnsupportedOperation|NotImplemented/i.test(name) || status === 501) return 'unsupported';
  if (status >= 500 || /^(ECONN|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH)/.test(code))
    return 'unavailable';
  if (/TimeoutError|RequestTimeout/i.test(name)) return 'timeout';
  return 'failed';
}

async function timed<T>(
  probe: () => Promise<T>,
): Promise<{ value?: T; failure?: Failure; latencyMs: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ProbeTimeout(`No answer within ${PROBE_TIMEOUT_MS} ms`)),
      PROBE_TIMEOUT_MS,
    );
  });
  try {
    const value = await Promise.race([probe(), timeout]);
    return { value, latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    return {
      failure: { code: problemCode(error), message: error instanceof Error ? error.message : String(error) },
      latencyMs: Math.round(performance.now() - started),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** A probe that answered nothing, without an error: not a verdict anyone can act on. */
const NO_ANSWER: Failure = { code: 'failed', message: 'The probe answered nothing' };

export async function checkHealth(
  probes: HealthProbes,
  version: string,
  now = new Date(),
): Promise<HealthCheck> {
  const { sending: sendingProbe, identity: identityProbe } = probes;
  const [database, queue, deadLetters, alarms, sending, identity] = await Promise.all([
    timed(() => probes.readDatabase()),
    timed(() => probes.queueDepth('emails')),
    timed(() => probes.queueDepth('deadLetters')),
    timed(() => probes.firingAlarms()),
    sendingProbe ? timed(() => sendingProbe()) : undefined,
    identityProbe ? timed(() => identityProbe()) : undefined,
  ]);
  const problems: HealthProblem[] = [];
  /** The failure's code for the answer; its message for the logs. */
  const failed = (check: HealthProblem['check'], failure: Failure) => {
    problems.push({ check, ...failure });
    return failure.code;
  };
  const queueFailure = queue.failure ?? (queue.value ? undefined : NO_ANSWER);
  const deadLetterFailure = deadLetters.failure ?? (deadLetters.value ? undefined : NO_ANSWER);
  const alarmsFailure = alarms.failure ?? (alarms.value ? undefined : NO_ANSWER);
  const checks: HealthReport['checks'] = {
    dynamodb: database.failure
      ? { status: 'error', latency_ms: database.latencyMs, code: failed('dynamodb', database.failure) }
      : { status: 'ok', latency_ms: database.latencyMs },
    queue:
      queueFailure || !queue.value
        ? { status: 'error', latency_ms: queue.latencyMs, code: failed('queue', queueFailure ?? NO_ANSWER) }
        : {
            status: 'ok',
            latency_ms: queue.latencyMs,
            depth: queue.value.visible,
            in_flight: queue.value.inFlight,
          },
    dead_letter_queue:
      deadLetterFailure || !deadLetters.value
        ? { status: 'error', code: failed('dead_letter_queue', deadLetterFailure ?? NO_ANSWER) }
        : { status: deadLetters.value.visible > 0 ? 'warn' : 'ok', depth: deadLetters.value.visible },
    alarms:
      alarmsFailure || !alarms.value
        ? { status: 'unknown', code: failed('alarms', alarmsFailure ?? NO_ANSWER) }
        : { status: alarms.value.length > 0 ? 'warn' : 'ok', firing: alarms.value },
  };
  if (sending) checks.sending = sendingCheck(sending, (failure) => failed('sending', failure));
  if (identity) checks.identity = identityCheck(identity, (failure) => failed('identity', failure));
  const broken =
    checks.dynamodb.status === 'error' ||
    checks.queue.status === 'error' ||
    checks.dead_letter_queue.status === 'error' ||
    checks.sending?.status === 'paused' ||
    checks.identity?.status === 'failed';
  const warned =
    checks.dead_letter_queue.status === 'warn' ||
    checks.alarms.status === 'warn' ||
    checks.identity?.status === 'pending' ||
    checks.identity?.status === 'warn';
  return {
    report: {
      status: broken ? 'unhealthy' : warned ? 'degraded' : 'healthy',
      checks,
      version,
      checked_at: now.toISOString(),
    },
    problems,
  };
}

/** SES that cannot be asked (a permission, a network) is `unknown` and leaves the verdict alone, as alarms do. */
function sendingCheck(
  { value, failure }: { value?: SendingState; failure?: Failure },
  failed: (failure: Failure) => HealthProblemCode,
): NonNullable<HealthReport['checks']['sending']> {
  if (failure || !value) return { status: 'unknown', code: failed(failure ?? NO_ANSWER) };
  return { status: value.enabled ? 'ok' : 'paused', ...(value.reason ? { reason: value.reason } : {}) };
}

/**
 * The identity's verdict. Verification or DKIM failed: SES will not send from the domain until its
 * records are fixed and it is verified again (unhealthy). Anything still on its way (pending, not
 * started, a temporary failure SES retries), or a MAIL FROM domain that failed (SES then sends with
 * its own MAIL FROM: mail goes, SPF is not aligned): degraded. Unreadable: unknown, no change.
 */
function identityCheck(
  { value, failure }: { value?: IdentityState; failure?: Failure },
  failed: (failure: Failure) => HealthProblemCode,
): NonNullable<HealthReport['checks']['identity']> {
  if (failure || !value) return { status: 'unknown', code: failed(failure ?? NO_ANSWER) };
  const states = {
    name: value.name,
    ...(value.verification ? { verification: value.verification } : {}),
    ...(value.dkim ? { dkim: value.dkim } : {}),
    ...(value.mailFrom ? { mail_from: value.mailFrom } : {}),
  };
  if (value.verification === 'FAILED' || value.dkim === 'FAILED') return { status: 'failed', ...states };
  const settled = [value.verification, value.dkim, value.mailFrom].every(
    (state) => state === undefined || state === 'SUCCESS',
  );
  if (value.verifiedForSending && settled) return { status: 'ok', ...states };
  // The domain sends, with SES's own MAIL FROM: a fault to fix, not a wait.
  if (value.verifiedForSending && value.mailFrom === 'FAILED' && value.dkim !== 'PENDING')
    return { status: 'warn', ...states };
  return { status: 'pending', ...states };
}

/**
 * Keeps a report for a few seconds, and shares one check among concurrent callers, so that calling
 * /health often (or maliciously) cannot load DynamoDB, SQS or CloudWatch.
 */
export class CachedHealth {
  private last?: { at: number; result: HealthCheck };
  private running?: Promise<HealthCheck>;

  constructor(
    private readonly check: () => Promise<HealthCheck>,
    private readonly ttlMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  async get(): Promise<HealthCheck> {
    if (this.last && this.clock() - this.last.at < this.ttlMs) return this.last.result;
    this.running ??= this.check().finally(() => {
      this.running = undefined;
    });
    const result = await this.running;
    this.last = { at: this.clock(), result };
    return result;
  }
}
