import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signUnsubscribeToken } from '../../lambdas/core/suppressions/unsubscribe-token';
import { SMALL_PLAN_CONTEXT } from '../support/e2e-contexts';
import { localLinkSecret } from '../support/link-tokens';
import { apiClient, type RuntimeProcess, startRuntimeProcess } from '../support/runtime-process';

const PLAN = SMALL_PLAN_CONTEXT;

const stateDir = mkdtempSync(join(tmpdir(), 'mailer-plan-'));
let runtime: RuntimeProcess;

beforeAll(async () => {
  runtime = await startRuntimeProcess({ stateDir, context: PLAN });
});

afterAll(async () => {
  await runtime?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('the usage plan on the local runtime', () => {
  it('throttles POST /send-email by its own method throttle, a burst above the plan, then stops the key at its quota, and only that key', async () => {
    const api = apiClient(runtime.url, runtime.apiKey);
    const answers: { status: number; message: unknown }[] = [];
    // API Gateway's own 429s say when to come back (the stack's gateway responses, served locally).
    const retryAfter = new Map<unknown, Set<string | null>>();
    const record = (status: number, body: Record<string, unknown>, headers: Headers) => {
      answers.push({ status, message: body.message });
      if (status === 429) {
        retryAfter.set(
          body.message,
          new Set([...(retryAfter.get(body.message) ?? []), headers.get('retry-after')]),
        );
      }
      return { status, message: body.message };
    };
    const call = async () => {
      const { status, body, headers } = await api('GET', '/nonprofits?limit=1');
      return record(status, body, headers);
    };

    // The method throttle (burst 2, 1 a minute) answers before the plan's (burst 3) would.
    const sends: { status: number; message: unknown }[] = [];
    for (let n = 0; n < 3; n++) {
      const { status, body, headers } = await api('POST', '/send-email', { emails: [], template: 'Hi' });
      sends.push(record(status, body, headers));
    }
    expect(sends.map((answer) => answer.status)).toEqual([400, 400, 429]);
    expect(sends[2]?.message).toBe('Too Many Requests');
    await sleep(3_100);

    const burst = await Promise.all(Array.from({ length: 10 }, call));
    expect(burst.filter((answer) => answer.status === 200).length).toBeGreaterThanOrEqual(
      PLAN.usagePlanBurstLimit,
    );
    expect(burst).toContainEqual({ status: 429, message: 'Too Many Requests' });

    // Throttled requests do not count against the quota: keep going, slower than the rate, until it ends.
    let last = { status: 200, message: undefined as unknown };
    for (let attempt = 0; attempt < 20 && last.message !== 'Limit Exceeded'; attempt++) {
      await sleep(1_100);
      last = await call();
    }
    expect(last).toEqual({ status: 429, message: 'Limit Exceeded' });
    // Every admitted request counts against the quota, whatever the function answered.
    expect(answers.filter((answer) => answer.status !== 429)).toHaveLength(PLAN.usagePlanQuotaPerDay);
    expect(await call()).toEqual({ status: 429, message: 'Limit Exceeded' });
    expect(retryAfter).toEqual(
      new Map([
        // The slowest throttle, POST /send-email's 1 a minute, gives a request back in 60 s.
        ['Too Many Requests', new Set(['60'])],
        ['Limit Exceeded', new Set(['3600'])],
      ]),
    );
    // Each key has its own buckets and quota: the authorizer hands the plan the key it checked.
    const sender = apiClient(runtime.url, runtime.keys.get('sender')?.value);
    expect((await sender('GET', '/usage')).status).toBe(200);
  });

  it("blocks one address flooding /unsubscribe at the web ACL, while another address's one-click POST goes through", async () => {
    // A valid link, sealed with the runtime's own secret, for a job that no longer exists: the
    // click still unsubscribes.
    const token = signUnsubscribeToken(await localLinkSecret(runtime).current(), {
      email: 'leaving@waf.example.org',
      jobId: randomUUID(),
    });
    // The one-click POST of RFC 8058, from a given local address (127.0.0.0/8 is all loopback).
    const oneClick = (localAddress: string, tokenValue: string) =>
      new Promise<number>((resolve, reject) => {
        const post = httpRequest(
          `${runtime.url}/unsubscribe?token=${encodeURIComponent(tokenValue)}`,
          { method: 'POST', localAddress, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
          (answer) => {
            answer.resume();
            answer.on('end', () => resolve(answer.statusCode ?? 0));
          },
        );
        post.on('error', reject);
        post.end('List-Unsubscribe=One-Click');
      });

    // The flood: junk tokens from 127.0.0.2. The first ten reach the function (400, not a link of
    // this deployment); past the rule's 10 a minute, the web ACL answers 429 and the function never runs.
    const flood: number[] = [];
    for (let n = 0; n < 15; n++) flood.push(await oneClick('127.0.0.2', `junk-${n}`));
    expect(flood).toEqual([...Array(10).fill(400), ...Array(5).fill(429)]);
    // A person's click from another address meanwhile: unsubscribed.
    expect(await oneClick('127.0.0.1', token)).toBe(200);
    expect(await oneClick('127.0.0.2', token)).toBe(429);
  });
});
