import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeCounts, fuzz } from '../../fuzz/run';
import { createFixtures, registerFixture, storeSnapshot, UNTHROTTLED_CONTEXT } from '../../fuzz/setup';
import { readApiModel } from '../../local/api-model';
import { servedTemplate } from '../../local/synth';
import { IntrinsicResolver } from '../../local/template';
import { type RuntimeProcess, startRuntimeProcess } from '../support/runtime-process';

/**
 * Fixed, so a failure here replays with `npm run fuzz -- --seed 20261128 --requests 200`. Enough to
 * reach every route (the test checks it) within the suite's time; `npm run fuzz` runs more.
 */
const SEED = 20261128;
const REQUESTS = 200;

const stateDir = mkdtempSync(join(tmpdir(), 'mailer-fuzz-e2e-'));
let runtime: RuntimeProcess;

beforeAll(async () => {
  runtime = await startRuntimeProcess({ stateDir, context: UNTHROTTLED_CONTEXT });
});

afterAll(async () => {
  await runtime?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('every route of the template, fuzzed over HTTP', () => {
  it(`answers ${REQUESTS} arbitrary and near-valid requests with no 5xx, JSON 4xx with a message, and no change from a refusal`, async () => {
    // The routes of the template this runtime serves: a new route is fuzzed without being listed.
    const template = servedTemplate(stateDir);
    const routes = readApiModel(template, new IntrinsicResolver(template)).routes;
    const store = await storeSnapshot(runtime.dynamoDbEndpoint);
    try {
      const fixtures = await createFixtures(runtime.url, runtime.apiKey);
      const report = await fuzz({
        url: runtime.url,
        // The operator's and the send-only key: a route the key may not call is a 403 that changes nothing.
        apiKeys: [
          runtime.apiKey,
          ...[...runtime.keys.values()].map((key) => key.value).filter((key) => key !== runtime.apiKey),
        ],
        routes,
        fixtures,
        numRuns: REQUESTS,
        seed: SEED,
        snapshot: store.snapshot,
        restoreFixtures: () => registerFixture(runtime.url, runtime.apiKey),
      });
      expect(report.failure, describeCounts(report)).toBeUndefined();
      expect(report.requests).toBeGreaterThanOrEqual(REQUESTS);
      expect([...report.byRoute.keys()].sort()).toEqual(
        routes.map((route) => `${route.method} ${route.resourcePath}`).sort(),
      );
    } finally {
      store.close();
    }
  });
});
