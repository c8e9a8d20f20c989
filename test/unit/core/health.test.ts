import { describe, expect, it, vi } from 'vitest';
import { makeHealth } from '../../../lambdas/api/health';
import {
  CachedHealth,
  checkHealth,
  type HealthCheck,
  type HealthProbes,
  type IdentityState,
  problemCode,
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

/** The keyed route's answer (every check), or with `resource` `/health`, the public one. */
const answer = async (check: Promise<HealthCheck>, resource = '/health/details') => {
  const result = await makeHealth({ get: () => check })(apiEvent({ resource }), lambdaContext);
  return { status: result.statusCode, body: jsonBody(result), headers: result.headers };
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

  it('is unhealthy (503) when DynamoDB fails, with a stable code, its message kept for the logs', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' });
    const check = checkHealth(probes({ readDatabase: async () => Promise.reject(refused) }), 'v');
    const { status, body } = await answer(check);
    expect(status).toBe(503);
    expect(body).toMatchObject({
      status: 'unhealthy',
      checks: { dynamodb: { status: 'error', code: 'unavailable' } },
    });
    expect(JSON.stringify(body)).not.toContain('ECONNREFUSED');
    expect((await check).problems).toEqual([
      { check: 'dynamodb', code: 'unavailable', message: 'connect ECONNREFUSED 10.0.0.1:443' },
    ]);
  });

  it('answers anyone only the verdict and when it was reached, 503 when unhealthy', async () => {
    const failing = checkHealth(
      probes({
        readDatabase: async () =>
          Promise.reject(new Error('User arn:aws:iam::123456789012:role/x is not authorized')),
        firingAlarms: async () => ['NonprofitMailer-ConsumerErrors'],
      }),
      '1.2.3',
    );
    const { status, body, headers } = await answer(failing, '/health');
    expect(status).toBe(503);
    expect(body).toEqual({ status: 'unhealthy', checked_at: expect.any(String) });
    expect(headers).toMatchObject({ 'cache-control': 'no-store' });
    expect(await answer(checkHealth(probes(), '1.2.3'), '/health')).toMatchObject({
      status: 200,
      body: { status: 'healthy', checked_at: expect.any(String) },
    });
  });

  it.each([
    [Object.assign(new Error('denied'), { name: 'AccessDeniedException' }), 'access_denied'],
    [Object.assign(new Error('x'), { name: 'X', $metadata: { httpStatusCode: 403 } }), 'access_denied'],
    [Object.assign(new Error('slow down'), { name: 'ThrottlingException' }), 'throttled'],
    [Object.assign(new Error('gone'), { name: 'ResourceNotFoundException' }), 'not_found'],
    [Object.assign(new Error('gone'), { name: 'AWS.SimpleQueueService.NonExistentQueue' }), 'not_found'],
    [
      Object.assign(new Error('none'), { name: 'UnsupportedOperation', $metadata: { httpStatusCode: 501 } }),
      'unsupported',
    ],
    [
      Object.assign(new Error('oops'), { name: 'InternalServerError', $metadata: { httpStatusCode: 500 } }),
      'unavailable',
    ],
    [Object.assign(new Error('reset'), { code: 'ECONNRESET' }), 'unavailable'],
    [new Error('something else'), 'failed'],
    ['not even an error', 'failed'],
  ] as const)('names %o as %s', (error, code) => {
    expect(problemCode(error)).toBe(code);
  });

  it('is unhealthy when a dependency does not answer within its timeout', async () => {
    vi.useFakeTimers();
    const pending = checkHealth(probes({ queueDepth: () => new Promise(() => undefined) }), 'v');
    await vi.advanceTimersByTimeAsync(2_000);
    const { report, problems } = await pending;
    vi.useRealTimers();
    expect(report.status).toBe('unhealthy');
    expect(report.checks.queue.code).toBe('timeout');
    // Both queues' depths are read with the one probe that never answers.
    expect(problems).toEqual(
      ['queue', 'dead_letter_queue'].map((check) => ({
        check,
        code: 'timeout',
        message: expect.stringContaining('No answer within'),
      })),
    );
  });

  it('stays healthy when alarms cannot be read (no CloudWatch), reporting them unknown', async () => {
    const { report } = await checkHealth(
      probes({
        firingAlarms: async () =>
          Promise.reject(Object.assign(new Error('no stand-in'), { name: 'UnsupportedOperation' })),
      }),
      'v',
    );
    expect(report.status).toBe('healthy');
    expect(report.checks.alarms).toEqual({ status: 'unknown', code: 'unsupported' });
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
    const { report } = await checkHealth(probes({ sending: async () => ({ enabled: true }) }), 'v');
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
    const { report: healthy } = await checkHealth(
      probes({ sending: async () => Promise.reject(new Error('AccessDenied: ses:GetAccount')) }),
      'v',
    );
    expect(healthy.status).toBe('healthy');
    expect(healthy.checks.sending).toEqual({ status: 'unknown', code: 'failed' });

    const { report: degraded } = await checkHealth(
      probes({
        firingAlarms: async () => ['NonprofitMailer-ConsumerErrors'],
        sending: async () => Promise.reject(new Error('timeout')),
      }),
      'v',
    );
    expect(degraded.status).toBe('degraded');
  });

  it('has no sending check without an SES probe (the record transport)', async () => {
    const { report } = await checkHealth(probes(), 'v');
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
    const { report } = await checkHealth(probes({ identity: identity({}) }), 'v');
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
    const { report } = await checkHealth(probes({ identity: identity(state) }), 'v');
    expect(report.status).toBe('degraded');
    expect(report.checks.identity?.status).toBe('pending');
  });

  it('warns (degraded) when the domain sends but its MAIL FROM domain failed: SPF is not aligned', async () => {
    const { report } = await checkHealth(probes({ identity: identity({ mailFrom: 'FAILED' }) }), 'v');
    expect(report.status).toBe('degraded');
    expect(report.checks.identity).toMatchObject({ status: 'warn', mail_from: 'FAILED' });
  });

  it.each([[{ verification: 'FAILED' }], [{ dkim: 'FAILED', verifiedForSending: false }]] as const)(
    'is unhealthy (503) once SES gave up verifying the domain: %o',
    async (state) => {
      const { report } = await checkHealth(probes({ identity: identity(state) }), 'v');
      expect(report.status).toBe('unhealthy');
      expect(report.checks.identity?.status).toBe('failed');
    },
  );

  it('leaves the verdict alone when the identity cannot be read', async () => {
    const { report } = await checkHealth(
      probes({ identity: async () => Promise.reject(new Error('AccessDenied: ses:GetEmailIdentity')) }),
      'v',
    );
    expect(report.status).toBe('healthy');
    expect(report.checks.identity).toEqual({ status: 'unknown', code: 'failed' });
  });
});
