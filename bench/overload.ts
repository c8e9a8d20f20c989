// npm run overload [-- --seconds 30 --factor 5]: the local gateway driven past a key's plan rate, on
// a read route and on POST /send-email; only 2xx and 429 may come back, and every accepted job ends exactly.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { mapConcurrently } from '../lambdas/core/concurrency';
import { operatorFirst } from '../local/api-keys';
import { readApiModel } from '../local/api-model';
import { startLocalRuntime } from '../local/runtime';
import { contextDefaults, servedTemplate } from '../local/synth';
import { IntrinsicResolver } from '../local/template';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    factor: { type: 'string', default: '5' },
  },
});
const seconds = Number(values.seconds);
const factor = Number(values.factor);

// The plan's limits as deployed; only the daily quota (and WAF's per-address limit: every request
// comes from this one address) are raised, so every 429 is the plan's rate's.
contextDefaults({ usagePlanQuotaPerDay: 10_000_000, sesMaxSendRate: 2_000, wafRequestsPerIp: 2_000_000_000 });
const stateDir = mkdtempSync(join(tmpdir(), 'mailer-overload-'));
console.log('Starting the local runtime…');
const runtime = await startLocalRuntime({ stateDir, port: 0, log: () => undefined });
const apiKey = operatorFirst(runtime.apiKeys)[0]?.value ?? '';
const headers = { 'x-api-key': apiKey, 'content-type': 'application/json' };

interface Phase {
  name: string;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  latency: { p50: number; p90: number; p99: number; max: number };
  requests: number;
}

async function drive(name: string, rate: number, request: autocannon.Request): Promise<Phase> {
  console.log(`${name}: ${rate} requests/s for ${seconds} s…`);
  const result = await autocannon({
    url: runtime.url,
    connections: 50,
    overallRate: rate,
    duration: seconds,
    requests: [request],
  });
  const statuses = Object.fromEntries(
    Object.entries(result.statusCodeStats ?? {}).map(([status, { count }]) => [status, Number(count)]),
  );
  return {
    name,
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    latency: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
    },
    requests: result.requests.total,
  };
}

let failed = false;
try {
  const template = servedTemplate(stateDir);
  const plan = readApiModel(template, new IntrinsicResolver(template)).usagePlans[0];
  const planRate = plan?.throttle?.rateLimit;
  if (!planRate) throw new Error('The template has no usage plan rate');
  const rate = Math.round(planRate * factor);

  const recipients = Array.from({ length: 20 }, (_, n) => `member${n}@overload.example.org`);
  await mapConcurrently(recipients, 4, async (email, n) => {
    const response = await fetch(`${runtime.url}/nonprofits`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ email, name: `Member ${n}`, address: `${n} Main St` }),
    });
    if (response.status !== 201) throw new Error(`Could not register ${email}: ${response.status}`);
  });
  // The read route's bucket and the send route's are apart: let the first phase's tokens refill.
  const read = await drive(`GET /nonprofits/{email} at ${factor}× the plan`, rate, {
    method: 'GET',
    path: `/v1/nonprofits/${encodeURIComponent(recipients[0] as string)}`,
    headers,
  });
  const jobIds: string[] = [];
  const send = await drive(`POST /send-email at ${factor}× the plan`, rate, {
    method: 'POST',
    path: '/v1/send-email',
    headers,
    body: JSON.stringify({ emails: recipients, template: 'Dear {name}', subject: 'Overload' }),
    onResponse: (status, body) => {
      if (status === 202) jobIds.push((JSON.parse(body) as { job_id: string }).job_id);
    },
  });

  console.log('Waiting for every accepted job to end…');
  const ended = await mapConcurrently(jobIds, 4, async (jobId) => {
    for (let polls = 0; polls < 600; polls++) {
      const response = await fetch(`${runtime.url}/jobs/${jobId}/status`, { headers });
      if (response.status === 200) {
        const job = (await response.json()) as {
          status: string;
          sent: number;
          failed: number;
          total_emails: number;
        };
        if (job.status === 'completed') return job;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return undefined;
  });
  const inexact = ended.filter((job) => !job || job.sent !== job.total_emails || job.failed !== 0);

  for (const phase of [read, send]) {
    const unexpected = Object.keys(phase.statuses).filter((status) => !/^(2\d\d|429)$/.test(status));
    console.log(`
${phase.name}
  requests     ${phase.requests} (${(phase.requests / seconds).toFixed(0)}/s)
  statuses     ${Object.entries(phase.statuses)
    .map(([status, count]) => `${status}×${count}`)
    .join('  ')}
  latency      p50 ${phase.latency.p50} ms, p90 ${phase.latency.p90} ms, p99 ${phase.latency.p99} ms, max ${phase.latency.max} ms
  errors       ${phase.errors} connection errors, ${phase.timeouts} timeouts`);
    if (unexpected.length > 0 || phase.errors > 0 || phase.timeouts > 0) failed = true;
  }
  console.log(`\nAccepted jobs  ${jobIds.length}, ended exactly: ${jobIds.length - inexact.length}`);
  if (inexact.length > 0) failed = true;
  console.log(
    failed
      ? '\nFAILED: an answer other than 2xx/429, or a job that did not end exactly.'
      : '\nOnly 2xx and 429; every accepted job ended with exact counts.',
  );
} finally {
  await runtime.stop();
  rmSync(stateDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
