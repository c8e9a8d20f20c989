// npm run fuzz [-- --requests 10000 --seed N]: every route of the template, fuzzed over HTTP on the local runtime.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { operatorFirst } from '../local/api-keys';
import { readApiModel } from '../local/api-model';
import { startLocalRuntime } from '../local/runtime';
import { contextDefaults, servedTemplate } from '../local/synth';
import { IntrinsicResolver } from '../local/template';
import { describeCounts, fuzz } from './run';
import { createFixtures, registerFixture, storeSnapshot, UNTHROTTLED_CONTEXT } from './setup';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '10000' },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
  },
});
const numRuns = Number(values.requests);
const seed = Number(values.seed);
if (!Number.isInteger(numRuns) || numRuns < 1) throw new Error('--requests must be a positive integer');

contextDefaults(UNTHROTTLED_CONTEXT);
const stateDir = mkdtempSync(join(tmpdir(), 'mailer-fuzz-'));
console.log('Starting the local runtime…');
const runtime = await startLocalRuntime({ stateDir, port: 0, log: () => undefined });
const store = await storeSnapshot(runtime.dynamoDbEndpoint);
let failed = true;
try {
  // The template the runtime synthesized and serves: its routes are what is fuzzed.
  const template = servedTemplate(stateDir);
  const routes = readApiModel(template, new IntrinsicResolver(template)).routes;
  // The operator's key sets the fixtures up; requests go with every key, whatever its scopes.
  const apiKey = operatorFirst(runtime.apiKeys)[0]?.value ?? '';
  const fixtures = await createFixtures(runtime.url, apiKey);
  console.log(`Fuzzing ${routes.length} routes with ${numRuns} requests, seed ${seed}…`);
  const started = performance.now();
  const report = await fuzz({
    url: runtime.url,
    apiKeys: operatorFirst(runtime.apiKeys).map((key) => key.value),
    routes,
    fixtures,
    numRuns,
    seed,
    snapshot: store.snapshot,
    restoreFixtures: () => registerFixture(runtime.url, apiKey),
  });
  console.log(`\n${describeCounts(report)}\n`);
  const neverAccepted = [...report.byRoute]
    .filter(([, counts]) => ![...counts.keys()].some((status) => status < 300))
    .map(([route]) => route);
  // Not a failure, but a sign the valid bodies of a route need attention: only refusals were fuzzed there.
  if (neverAccepted.length > 0) console.log(`Never accepted: ${neverAccepted.join(', ')}\n`);
  console.log(`${report.requests} requests in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (report.failure)
    console.log(`\nFAILED — replay with: npm run fuzz -- --seed ${seed}\n${report.failure}`);
  else console.log('No 5xx, every 4xx JSON with a message, no stored change from a refused request.');
  failed = report.failure !== undefined;
} finally {
  store.close();
  await runtime.stop();
  rmSync(stateDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
