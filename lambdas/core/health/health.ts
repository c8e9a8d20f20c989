import type { QueueDepth } from '../queue/queue-depth';

/**
 * GET /health: whether the system works, from real calls to what it depends on, each with a short
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

export interface HealthReport {
  status: HealthStatus;
  checks: {
    dynamodb: { status: 'ok' | 'error'; latency_ms: number; error?: string };
    queue: { status: 'ok' | 'error'; latency_ms: number; depth?: number; in_flight?: number; error?: string };
    dead_letter_queue: { status: 'ok' | 'warn' | 'error'; depth?: number; error?: string };
    alarms: { status: 'ok' | 'warn' | 'unknown'; firing?: string[]; error?: string };
    /** SES: `paused` means nothing can be sent (emails wait in the queue) and makes the system unhealthy. */
    sending?: { status: 'ok' | 'paused' | 'unknown'; reason?: string; error?: string };
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
      error?: string;
    };
  };
  version: string;
  checked_at: string;
}

const PROBE_TIMEOUT_MS = 2_000;

async function timed<T>(probe: () => Promise<T>): Promise<{ value?: T; error?: string; latencyMs: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`No answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
  });
  try {
    const value = await Promise.race([probe(), timeout]);
    return { value, latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    return {
      error: error instanceof Error ? error.message : String(error),
      latencyMs: Math.round(performance.now() - started),
    };
  } finally {
    clearTimeout(timer);
  }
}

export async function checkHealth(
  probes: HealthProbes,
  version: string,
  now = new Date(),
): Promise<HealthReport> {
  const { sending: sendingProbe, identity: identityProbe } = probes;
  const [database, queue, deadLetters, alarms, sending, identity] = await Promise.all([
    timed(() => probes.readDatabase()),
    timed(() => probes.queueDepth('emails')),
    timed(() => probes.queueDepth('deadLetters')),
    timed(() => probes.firingAlarms()),
    sendingProbe ? timed(() => sendingProbe()) : undefined,
    identityProbe ? timed(() => identityProbe()) : undefined,
  ]);
  const checks: HealthReport['checks'] = {
    dynamodb: database.error
      ? { status: 'error', latency_ms: database.latencyMs, error: database.error }
      : { status: 'ok', latency_ms: database.latencyMs },
    queue:
      queue.error || !queue.value
        ? { status: 'error', latency_ms: queue.latencyMs, error: queue.error ?? 'No answer' }
        : {
            status: 'ok',
            latency_ms: queue.latencyMs,
            depth: queue.value.visible,
            in_flight: queue.value.inFlight,
          },
    dead_letter_queue:
      deadLetters.error || !deadLetters.value
        ? { status: 'error', error: deadLetters.error ?? 'No answer' }
        : { status: deadLetters.value.visible > 0 ? 'warn' : 'ok', depth: deadLetters.value.visible },
    alarms:
      alarms.error || !alarms.value
        ? { status: 'unknown', error: alarms.error ?? 'No answer' }
        : { status: alarms.value.length > 0 ? 'warn' : 'ok', firing: alarms.value },
  };
  if (sending) checks.sending = sendingCheck(sending);
  if (identity) checks.identity = identityCheck(identity);
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
    status: broken ? 'unhealthy' : warned ? 'degraded' : 'healthy',
    checks,
    version,
    checked_at: now.toISOString(),
  };
}

/** SES that cannot be asked (a permission, a network) is `unknown` and leaves the verdict alone, as alarms do. */
function sendingCheck({
  value,
  error,
}: {
  value?: SendingState;
  error?: string;
}): NonNullable<HealthReport['checks']['sending']> {
  if (error || !value) return { status: 'unknown', error: error ?? 'No answer' };
  return { status: value.enabled ? 'ok' : 'paused', ...(value.reason ? { reason: value.reason } : {}) };
}

/**
 * The identity's verdict. Verification or DKIM failed: SES will not send from the domain until its
 * records are fixed and it is verified again (unhealthy). Anything still on its way (pending, not
 * started, a temporary failure SES retries), or a MAIL FROM domain that failed (SES then sends with
 * its own MAIL FROM: mail goes, SPF is not aligned): degraded. Unreadable: unknown, no change.
 */
function identityCheck({
  value,
  error,
}: {
  value?: IdentityState;
  error?: string;
}): NonNullable<HealthReport['checks']['identity']> {
  if (error || !value) return { status: 'unknown', error: error ?? 'No answer' };
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
  private last?: { at: number; report: HealthReport };
  private running?: Promise<HealthReport>;

  constructor(
    private readonly check: () => Promise<HealthReport>,
    private readonly ttlMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  async get(): Promise<HealthReport> {
    if (this.last && this.clock() - this.last.at < this.ttlMs) return this.last.report;
    this.running ??= this.check().finally(() => {
      this.running = undefined;
    });
    const report = await this.running;
    this.last = { at: this.clock(), report };
    return report;
  }
}
