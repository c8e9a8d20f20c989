import { describe, expect, it, vi } from 'vitest';
import { makeHealth } from '../../../lambdas/api/health';
import {
  CachedHealth,
  checkHealth,
  type HealthProbes,
  type IdentityState,
} from '../../../lambdas/core/health/health';
import { apiEvent, jsonBody, lambdaContext } from '../../support/api-events';

function probes(overrides: Partial<HealthProbes> = {}): HealthProbes {
  return {
    readDatabase: async () => undefined,
    queueDepth: async (which) =>
      which === 'emails' ? { visible: 12, inFlight: 3, delayed: 0 } : { visible: 0, inFlight: 0, delayed: 0 },
    firingAlarms: async () => [],
    ...overrides,
  };
}

const answer = async (report: Promise<Awaited<ReturnType<typeof checkHealth>>>) => {
  const result = await makeHealth({ get: () => report })(apiEvent({ resource: '/health' }), lambdaContext);
  return { status: result.statusCode, body: jsonBody(result) };
};

describe('GET /health', () => {
  it('is healthy, with the measured latency and the queue depth, when everything answers', async () => {
    const { status, body } = await answer(checkHealth(probes(), '1.2.3'));
    expect(status).toBe(200);
    expect(body).toMatchObject({
      status: 'healthy',
      version: '1.2.3',
      checks: {
        dynamodb: { status: 'ok', latency_ms: expect.any(Number) },
        queue: { status: 'ok', depth: 12, in_flight: 3 },
        dead_letter_queue: { status: 'ok', depth: 0 },
        alarms: { status: 'ok', firing: [] },
      },
    });
  });

  it('is degraded (still 200) with messages in the dead-letter queue or a firing alarm', async () => {
    const deadLetters = await answer(
      checkHealth(
        probes({
          queueDepth: async (which) => ({
            visible: which === 'deadLetters' ? 4 : 0,
            inFlight: 0,
            delayed: 0,
          }),
        }),
        'v',
      ),
    );
    expect(deadLetters).toMatchObject({
      status: 200,
      body: { status: 'degraded', checks: { dead_letter_queue: { status: 'warn', depth: 4 } } },
    });
    const alarm = await answer(
      checkHealth(probes({ firingAlarms: async () => ['NonprofitMailer-ConsumerErrors'] }), 'v'),
    );
    expect(alarm).toMatchObject({
      status: 200,
      body: { status: 'degraded', checks: { alarms: { firing: ['NonprofitMailer-ConsumerErrors'] } } },
    });
  });

  it('is unhealthy (503) when DynamoDB fails, naming the error', async () => {
    const { status, body } = await answer(
      checkHealth(
        probes({ readDatabase: async () => Promise.reject(new Error('connect ECONNREFUSED')) }),
        'v',
      ),
    );
    expect(status).toBe(503);
    expect(body).toMatchObject({
      status: 'unhealthy',
      checks: { dynamodb: { status: 'error', error: 'connect ECONNREFUSED' } },
    });
  });

  it('is unhealthy when a dependency does not answer within its timeout', async () => {
    vi.useFakeTimers();
    const pending = checkHealth(probes({ queueDepth: () => new Promise(() => undefined) }), 'v');
    await vi.advanceTimersByTimeAsync(2_000);
    const report = await pending;
    vi.useRealTimers();
    expect(report.status).toBe('unhealthy');
    expect(report.checks.queue.error).toContain('No answer within');
  });

  it('stays healthy when alarms cannot be read (no CloudWatch), reporting them unknown', async () => {
    const report = await checkHealth(
      probes({ firingAlarms: async () => Promise.reject(new Error('no stand-in')) }),
      'v',
    );
    expect(report.status).toBe('healthy');
    expect(report.checks.alarms).toEqual({ status: 'unknown', error: 'no stand-in' });
  });

  it('checks at most once per cache period, sharing one check among concurrent callers', async () => {
    let now = 0;
    const check = vi.fn(() => checkHealth(probes(), 'v'));
    const cached = new CachedHealth(check, 5_000, () => now);
    await Promise.all([cached.get(), cached.get(), cached.get()]);
    now = 4_999;
    await cached.get();
    expect(check).toHaveBeenCalledTimes(1);
    now = 10_000;
    await cached.get();
    expect(check).toHaveBeenCalledTimes(2);
  });
});

describe('GET /health with SES', () => {
  it('reports sending ok when SES will send, and nothing of the quota (the route answers anyone)', async () => {
    const report = await checkHealth(probes({ sending: async () => ({ enabled: true }) }), 'v');
    expect(report.status).toBe('healthy');
    expect(report.checks.sending).toEqual({ status: 'ok' });
  });

  it('is unhealthy (503) when SES will not send, saying why', async () => {
    const reason = 'Sending is disabled for the account (enforcement status SHUTDOWN)';
    const { status, body } = await answer(
      checkHealth(probes({ sending: async () => ({ enabled: false, reason }) }), 'v'),
    );
    expect(status).toBe(503);
    expect(body).toMatchObject({ status: 'unhealthy', checks: { sending: { status: 'paused', reason } } });
  });

  it('leaves the verdict alone when SES cannot be asked, reporting sending unknown', async () => {
    const healthy = await checkHealth(
      probes({ sending: async () => Promise.reject(new Error('AccessDenied: ses:GetAccount')) }),
      'v',
    );
    expect(healthy.status).toBe('healthy');
    expect(healthy.checks.sending).toEqual({ status: 'unknown', error: 'AccessDenied: ses:GetAccount' });

    const degraded = await checkHealth(
      probes({
        firingAlarms: async () => ['NonprofitMailer-ConsumerErrors'],
        sending: async () => Promise.reject(new Error('timeout')),
      }),
      'v',
    );
    expect(degraded.status).toBe('degraded');
  });

  it('has no sending check without an SES probe (the record transport)', async () => {
    const report = await checkHealth(probes(), 'v');
    expect(report.checks).not.toHaveProperty('sending');
    expect(report.checks).not.toHaveProperty('identity');
  });
});

describe('the sending domain in GET /health', () => {
  const identity = (state: Partial<IdentityState>) => async (): Promise<IdentityState> => ({
    name: 'example.org',
    verifiedForSending: true,
    verification: 'SUCCESS',
    dkim: 'SUCCESS',
    mailFrom: 'SUCCESS',
    ...state,
  });

  it('is ok once the domain is verified, DKIM signs and the MAIL FROM domain is found', async () => {
    const report = await checkHealth(probes({ identity: identity({}) }), 'v');
    expect(report.status).toBe('healthy');
    expect(report.checks.identity).toEqual({
      status: 'ok',
      name: 'example.org',
      verification: 'SUCCESS',
      dkim: 'SUCCESS',
      mail_from: 'SUCCESS',
    });
  });

  it.each([
    [{ verifiedForSending: false, verification: 'PENDING', dkim: 'PENDING' }],
    [{ dkim: 'NOT_STARTED' }],
    [{ dkim: 'TEMPORARY_FAILURE' }],
    [{ mailFrom: 'PENDING' }],
  ] as const)('is degraded while the records are not all in place: %o', async (state) => {
    const report = await checkHealth(probes({ identity: identity(state) }), 'v');
    expect(report.status).toBe('degraded');
    expect(report.checks.identity?.status).toBe('pending');
  });

  it('warns (degraded) when the domain sends but its MAIL FROM domain failed: SPF is not aligned', async () => {
    const report = await checkHealth(probes({ identity: identity({ mailFrom: 'FAILED' }) }), 'v');
    expect(report.status).toBe('degraded');
    expect(report.checks.identity).toMatchObject({ status: 'warn', mail_from: 'FAILED' });
  });

  it.each([[{ verification: 'FAILED' }], [{ dkim: 'FAILED', verifiedForSending: false }]] as const)(
    'is unhealthy (503) once SES gave up verifying the domain: %o',
    async (state) => {
      const report = await checkHealth(probes({ identity: identity(state) }), 'v');
      expect(report.status).toBe('unhealthy');
      expect(report.checks.identity?.status).toBe('failed');
    },
  );

  it('leaves the verdict alone when the identity cannot be read', async () => {
    const report = await checkHealth(
      probes({ identity: async () => Promise.reject(new Error('AccessDenied: ses:GetEmailIdentity')) }),
      'v',
    );
    expect(report.status).toBe('healthy');
    expect(report.checks.identity).toEqual({
      status: 'unknown',
      error: 'AccessDenied: ses:GetEmailIdentity',
    });
  });
});
