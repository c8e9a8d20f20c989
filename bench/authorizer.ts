// npm run bench:authorizer [-- --requests 400]: what the API keys' authorizer costs a request, with
// API Gateway's cache of its answers (per key and route, `authorizerCacheSeconds`) and without it.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROUTE_SCOPES } from '../lambdas/core/auth/scopes';
import { describedScopes } from '../local/api-keys';
import { startLocalRuntime } from '../local/runtime';
import { contextDefaults } from '../local/synth';
import { PRICES } from './prices';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '400' } } });
const requests = Number(values.requests);

/** API Gateway's own latency for a warm Lambda authorizer call, the figure the cost model uses (ms). */
const AWS_AUTHORIZER_MS = 20;
/** The authorizer's memory, as the stack gives it (MB). */
const AUTHORIZER_MB = 256;

const LIMITS = {
  usagePlanRateLimit: 10_000,
  usagePlanBurstLimit: 10_000,
  stageRateLimit: 10_000,
  stageBurstLimit: 10_000,
  // Every request comes from this machine's one address: WAF's per-address limit is not measured here.
  wafRequestsPerIp: 2_000_000_000,
};
const given = contextDefaults({});

/** Sends `count` requests one after another; answers the median and 99th percentile in ms, and the statuses. */
async function timed(url: string, key: string, count: number) {
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  for (let n = 0; n < count; n++) {
    const started = performance.now();
    const response = await fetch(url, { headers: { 'x-api-key': key } });
    await response.arrayBuffer();
    latencies.push(performance.now() - started);
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Number((latencies[Math.floor(q * (latencies.length - 1))] ?? 0).toFixed(2));
  return { p50: at(0.5), p99: at(0.99), statuses: Object.fromEntries(statuses) };
}

/** One runtime with this cache: the send key on a route it may call and on one it may not. */
async function measure(authorizerCacheSeconds: number) {
  process.env.CDK_CONTEXT_JSON = JSON.stringify({ ...LIMITS, ...given, authorizerCacheSeconds });
  const stateDir = mkdtempSync(join(tmpdir(), 'mailer-authorizer-'));
  console.log(`Starting the local runtime (authorizerCacheSeconds ${authorizerCacheSeconds})…`);
  const runtime = await startLocalRuntime({ stateDir, port: 0, log: () => undefined });
  try {
    const sender =
      runtime.apiKeys.find((key) => describedScopes(key.description).join() === 'send')?.value ?? '';
    const stats = () =>
      [...runtime.functionStats()].find(([name]) => /Authorizer/.test(name))?.[1] ?? {
        invocations: 0,
        totalMs: 0,
      };
    // Warm the route's function and the authorizer (its first call reads the keys from API Gateway).
    await timed(`${runtime.url}/usage`, sender, 5);
    await timed(`${runtime.url}/nonprofits`, sender, 5);
    const before = stats();
    const allowed = await timed(`${runtime.url}/usage`, sender, requests);
    const denied = await timed(`${runtime.url}/nonprofits`, sender, requests);
    const after = stats();
    const invocations = after.invocations - before.invocations;
    return {
      keys: runtime.apiKeys.length,
      authorizerInvocations: invocations,
      // A warm authorizer's own time, locally (the key values already read).
      authorizerWarmMs:
        invocations > 0 ? Number(((after.totalMs - before.totalMs) / invocations).toFixed(2)) : null,
      allowedLatencyMs: allowed,
      deniedLatencyMs: denied,
    };
  } finally {
    await runtime.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

const cached = await measure(300);
const uncached = await measure(0);
// A month of the cache's worst case: every key asks every route once per TTL, whatever the traffic.
const routes = Object.keys(ROUTE_SCOPES).length;
const cachedPerMonth = cached.keys * routes * ((30 * 86_400) / 300);
const invocationCost = (count: number) =>
  count *
  (PRICES.lambdaRequest + (AWS_AUTHORIZER_MS / 1000) * (AUTHORIZER_MB / 1024) * PRICES.lambdaGbSecond);
const result = {
  requests: requests * 2,
  cached,
  uncached,
  routes,
  awsAuthorizerMsModel: AWS_AUTHORIZER_MS,
  costPerMonthCachedWorstCase: Number(invocationCost(cachedPerMonth).toFixed(4)),
  costPerMillionRequestsUncached: Number(invocationCost(1e6).toFixed(4)),
  apiGatewayPerMillionRequests: PRICES.apiGatewayRequest * 1e6,
};
console.log(JSON.stringify(result, null, 2));
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/authorizer.json', `${JSON.stringify(result, null, 2)}\n`);
