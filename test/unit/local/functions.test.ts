import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalFunction } from '../../../local/functions';

const root = mkdtempSync(join(tmpdir(), 'local-functions-'));
const opened: LocalFunction[] = [];
afterAll(async () => {
  await Promise.all(opened.map((fn) => fn.close()));
  rmSync(root, { recursive: true, force: true });
});

/** A bundle as the runtime finds one: `index.mjs` exporting `handler`, its module body given. */
function localFunction(name: string, source: string, timeoutSeconds: number): LocalFunction {
  const assetDir = join(root, name);
  mkdirSync(assetDir);
  writeFileSync(join(assetDir, 'index.mjs'), source);
  const fn = new LocalFunction({
    logicalId: name,
    functionName: name,
    assetDir,
    handler: 'index.handler',
    environment: {},
    timeoutSeconds,
    memorySize: 128,
  });
  opened.push(fn);
  return fn;
}

describe('a local function, timed as Lambda times it', () => {
  it('does not count a slow module load (the init phase) against the invocation timeout', async () => {
    const fn = localFunction(
      'slow-init',
      `const started = Date.now(); while (Date.now() - started < 1500) {}
       export const handler = async (_event, context) => ({ remaining: context.getRemainingTimeInMillis() });`,
      1,
    );
    const result = await fn.invoke({});
    expect(result.ok).toBe(true);
    expect((result as { value: { remaining: number } }).value.remaining).toBeGreaterThan(500);
  });

  it('times out a handler that runs past its timeout, and serves the next call from a fresh environment', async () => {
    const fn = localFunction(
      'slow-handler',
      `let calls = 0;
       export const handler = async (event) => { calls++; if (event.slow) await new Promise((r) => setTimeout(r, 5000)); return calls; };`,
      1,
    );
    expect(await fn.invoke({ slow: true })).toMatchObject({
      ok: false,
      error: { errorType: 'Sandbox.Timedout' },
    });
    // A fresh environment: its module state starts again, as after Lambda ends a timed-out sandbox.
    expect(await fn.invoke({ slow: false })).toEqual({ ok: true, value: 1 });
  });

  it('reports a module that fails to load as Runtime.ImportModuleError', async () => {
    const fn = localFunction('broken', `throw new Error('Invalid environment: JOBS_TABLE is not set');`, 1);
    expect(await fn.invoke({})).toMatchObject({
      ok: false,
      error: { errorType: 'Runtime.ImportModuleError', errorMessage: expect.stringContaining('JOBS_TABLE') },
    });
  });

  it('fails a response over 6 MB as Lambda does', async () => {
    const fn = localFunction(
      'huge',
      `export const handler = async () => ({ statusCode: 200, body: 'x'.repeat(6_300_000) });`,
      3,
    );
    expect(await fn.invoke({})).toMatchObject({
      ok: false,
      error: { errorType: 'Function.ResponseSizeTooLarge' },
    });
  });

  it('serves a burst of concurrent cold calls, loading only a few environments at once', async () => {
    // Each environment writes when its module starts and ends loading (the init phase), by thread.
    const initLog = join(root, 'burst-inits.log');
    const fn = localFunction(
      'burst',
      `import { appendFileSync } from 'node:fs';
       import { threadId } from 'node:worker_threads';
       appendFileSync(${JSON.stringify(initLog)}, 'start ' + threadId + '\\n');
       const started = Date.now(); while (Date.now() - started < 300) {}
       appendFileSync(${JSON.stringify(initLog)}, 'end ' + threadId + '\\n');
       export const handler = async (event) => event.n;`,
      2,
    );
    const results = await Promise.all(Array.from({ length: 12 }, (_, n) => fn.invoke({ n })));
    expect(results).toEqual(Array.from({ length: 12 }, (_, n) => ({ ok: true, value: n })));

    const events = readFileSync(initLog, 'utf8').trim().split('\n');
    let loading = 0;
    let most = 0;
    for (const event of events) {
      loading += event.startsWith('start') ? 1 : -1;
      most = Math.max(most, loading);
    }
    // Never more than two loading at once (PARALLEL_INITS), and no more environments than calls.
    expect(most).toBeLessThanOrEqual(2);
    const environments = events.filter((event) => event.startsWith('start')).length;
    expect(environments).toBeGreaterThan(1);
    expect(environments).toBeLessThanOrEqual(10);
  });
});
