// npm run soak [-- --minutes 10]: mixed traffic and jobs against `npm start`'s runtime for a long
// while. The runtime's memory and open handles must stay bounded (sampled, printed at start, middle
// and end), no answer may be a 5xx, and every accepted job must end with exact counts.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { UNTHROTTLED_CONTEXT } from '../fuzz/setup';
import { mapConcurrently } from '../lambdas/core/concurrency';
import { clearInbox } from '../local/ses';
import { apiClient, startRuntimeProcess } from '../test/support/runtime-process';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    clients: { type: 'string', default: '4' },
  },
});
const durationMs = Number(values.minutes) * 60_000;
const clients = Number(values.clients);
if (!(durationMs > 0) || !Number.isInteger(clients) || clients < 1)
  throw new Error('--minutes must be positive and --clients a positive integer');

/** Resident memory in MiB, open file descriptors (sockets, files, pipes) and threads of a process. */
interface Sample {
  atSeconds: number;
  rssMiB: number;
  fds: number;
  threads: number;
  javaRssMiB: number;
}

const statusField = (pid: number, field: string) =>
  Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

function sample(pid: number, javaPid: number, startedAt: number): Sample {
  return {
    atSeconds: Math.round((performance.now() - startedAt) / 1000),
    rssMiB: Math.round(statusField(pid, 'VmRSS') / 1024),
    fds: readdirSync(`/proc/${pid}/fd`).length,
    threads: statusField(pid, 'Threads'),
    javaRssMiB: Math.round(statusField(javaPid, 'VmRSS') / 1024),
  };
}

/** Limits on the second half's trend (least-squares slope over its samples). */
const MAX_RSS_MIB_PER_MINUTE = 32;
const MAX_FDS_PER_MINUTE = 4;

/** The least-squares slope of a measure over the samples, per minute. */
function perMinute(samples: readonly Sample[], measure: (sample: Sample) => number): number {
  const n = samples.length;
  if (n < 2) return 0;
  const meanX = samples.reduce((total, at) => total + at.atSeconds, 0) / n;
  const meanY = samples.reduce((total, at) => total + measure(at), 0) / n;
  let covariance = 0;
  let variance = 0;
  for (const at of samples) {
    covariance += (at.atSeconds - meanX) * (measure(at) - meanY);
    variance += (at.atSeconds - meanX) ** 2;
  }
  return variance === 0 ? 0 : (covariance / variance) * 60;
}

const stateDir = mkdtempSync(join(tmpdir(), 'mailer-soak-'));
console.log('Starting the local runtime (as npm start does)…');
const runtime = await startRuntimeProcess({ stateDir, context: UNTHROTTLED_CONTEXT });
// The soak counts server errors itself (`call`), and reports them all at the end.
const api = apiClient(runtime.url, runtime.apiKey, { serverErrorsExpected: true });
const pid = runtime.child.pid ?? 0;
const statuses = new Map<string, number>();
const serverErrors: string[] = [];
const jobs = new Map<string, number>();
let failed = false;

/** Calls the API, counting the answer by route and status; a 5xx is kept as a failure. */
async function call(
  route: string,
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) {
  const answer = await api(method, path, body, headers);
  const key = `${route} ${answer.status}`;
  statuses.set(key, (statuses.get(key) ?? 0) + 1);
  if (answer.status >= 500)
    serverErrors.push(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer;
}

const pick = <T>(items: readonly T[]) => items[Math.floor(Math.random() * items.length)] as T;
const members = Array.from({ length: 200 }, (_, n) => `member${n}@soak.example.org`);

/** One client's traffic: a weighted mix of every kind of request, until the deadline. */
async function client(id: number, until: number) {
  let churn = 0;
  while (performance.now() < until) {
    const roll = Math.random();
    if (roll < 0.15) {
      // A nonprofit's whole life: created, read, renamed, listed, deleted.
      const email = `churn-${id}-${churn++}@churn.soak.example.org`;
      await call('POST /nonprofits', 'POST', '/nonprofits', { email, name: 'Churn', address: '1 Churn St' });
      await call('GET /nonprofits/{email}', 'GET', `/nonprofits/${email}`);
      await call('PUT /nonprofits/{email}', 'PUT', `/nonprofits/${email}`, {
        name: 'Churned',
        address: '2 Churn St',
      });
      await call('DELETE /nonprofits/{email}', 'DELETE', `/nonprofits/${email}`);
    } else if (roll < 0.25) {
      const recipients = [
        ...new Set(Array.from({ length: 10 + Math.floor(Math.random() * 40) }, () => pick(members))),
      ];
      const key = `soak-${id}-${churn++}`;
      const body = { emails: recipients, template: 'Dear {name}, at {address}', subject: 'Soak for {name}' };
      const accepted = await call('POST /send-email', 'POST', '/send-email', body, {
        'Idempotency-Key': key,
      });
      if (accepted.status === 202) {
        const jobId = String(accepted.body.job_id);
        jobs.set(jobId, recipients.length);
        // A client's retry of the same request: the same job, nothing more sent.
        const replay = await call('POST /send-email', 'POST', '/send-email', body, {
          'Idempotency-Key': key,
        });
        if (replay.body.job_id !== jobId)
          serverErrors.push(`replay of ${key} answered another job: ${JSON.stringify(replay.body)}`);
      }
    } else if (roll < 0.45 && jobs.size > 0) {
      const jobId = pick([...jobs.keys()]);
      await call('GET /jobs/{job_id}/status', 'GET', `/jobs/${jobId}/status`);
      await call('GET /jobs/{job_id}/emails', 'GET', `/jobs/${jobId}/emails?limit=20`);
      await call('GET /jobs/{job_id}', 'GET', `/jobs/${jobId}`);
    } else if (roll < 0.6) {
      const page = await call('GET /nonprofits', 'GET', '/nonprofits?domain=soak.example.org&limit=50');
      const cursor = page.body.next_cursor;
      if (typeof cursor === 'string')
        await call(
          'GET /nonprofits',
          'GET',
          `/nonprofits?domain=soak.example.org&limit=50&cursor=${encodeURIComponent(cursor)}`,
        );
      await call('GET /jobs', 'GET', '/jobs?limit=20');
    } else if (roll < 0.8) {
      // Refusals: each must be the 4xx its mistake calls for (the fuzzer checks they change nothing).
      const refusals = [
        await call('POST /send-email', 'POST', '/send-email', {
          emails: ['nobody@soak.example.org'],
          template: 'Hi',
        }),
        await call('POST /nonprofits', 'POST', '/nonprofits', {
          email: 'not an address',
          name: '',
          address: 1,
        }),
        await call('GET /jobs/{job_id}/status', 'GET', '/jobs/not-a-job/status'),
      ];
      const expected = [404, 400, 400];
      refusals.forEach(({ status }, index) => {
        if (status !== expected[index])
          serverErrors.push(`refusal ${index} answered ${status}, not ${expected[index]}`);
      });
    } else {
      await call('GET /health', 'GET', '/health');
      await call('GET /nonprofits/{email}', 'GET', `/nonprofits/${pick(members)}`);
    }
    await sleep(50);
  }
}

try {
  await mapConcurrently(members, 8, async (email, n) => {
    const { status } = await api('POST', '/nonprofits', {
      email,
      name: `Member ${n}`,
      address: `${n} Main St`,
    });
    if (status !== 201) throw new Error(`Could not register ${email}: ${status}`);
  });
  const startedAt = performance.now();
  const until = startedAt + durationMs;
  const samples: Sample[] = [sample(pid, runtime.javaPid(), startedAt)];
  console.log(`Soaking for ${values.minutes} min with ${clients} clients…`);
  const sampler = (async () => {
    while (performance.now() < until) {
      await sleep(Math.min(15_000, Math.max(0, until - performance.now())));
      samples.push(sample(pid, runtime.javaPid(), startedAt));
      const last = samples.at(-1) as Sample;
      console.log(
        `  ${String(last.atSeconds).padStart(4)} s  rss ${last.rssMiB} MiB  fds ${last.fds}  threads ${last.threads}  java ${last.javaRssMiB} MiB  jobs ${jobs.size}`,
      );
      // The local SES keeps every email in memory by design (the inbox is for reading them):
      // emptied here so what is measured is the runtime, not a growing mailbox.
      await clearInbox(runtime.inboxUrl);
    }
  })();
  await Promise.all([...Array.from({ length: clients }, (_, id) => client(id, until)), sampler]);

  console.log(`Waiting for ${jobs.size} jobs to end…`);
  const inexact: string[] = [];
  await mapConcurrently([...jobs], 4, async ([jobId, total]) => {
    for (let polls = 0; polls < 600; polls++) {
      const { body } = await api('GET', `/jobs/${jobId}/status`);
      if (body.status === 'completed') {
        if (body.total_emails !== total || body.sent !== total || body.failed !== 0)
          inexact.push(`${jobId}: ${JSON.stringify(body)}`);
        return;
      }
      await sleep(500);
    }
    inexact.push(`${jobId}: did not end`);
  });

  const middle = samples[Math.floor(samples.length / 2)] as Sample;
  const end = samples.at(-1) as Sample;
  const show = (label: string, at: Sample) =>
    `  ${label.padEnd(7)} ${String(at.atSeconds).padStart(4)} s  rss ${at.rssMiB} MiB  fds ${at.fds}  threads ${at.threads}  java ${at.javaRssMiB} MiB`;
  console.log(
    `\nThe runtime's process (pid ${pid}):\n${show('start', samples[0] as Sample)}\n${show('middle', middle)}\n${show('end', end)}`,
  );
  const requests = [...statuses.values()].reduce((total, count) => total + count, 0);
  console.log(`\n${requests} answers by route and status:`);
  for (const [key, count] of [...statuses].sort()) console.log(`  ${key.padEnd(40)} ${count}`);
  // Bounded: over the second half of the run (warm by then: every function's environments exist),
  // the trend of the samples, not two of them. Memory swings by a few hundred MiB as garbage is
  // collected; a trend past these limits is a leak a longer run would make obvious.
  const second = samples.slice(Math.floor(samples.length / 2));
  const rssTrend = perMinute(second, (at) => at.rssMiB);
  const fdTrend = perMinute(second, (at) => at.fds);
  console.log(
    `\nSecond half's trend: rss ${rssTrend.toFixed(1)} MiB/min (limit ${MAX_RSS_MIB_PER_MINUTE}), descriptors ${fdTrend.toFixed(1)}/min (limit ${MAX_FDS_PER_MINUTE})`,
  );
  const grew =
    rssTrend > MAX_RSS_MIB_PER_MINUTE || fdTrend > MAX_FDS_PER_MINUTE || end.threads > middle.threads + 4;
  console.log(`\nAccepted jobs ${jobs.size}, ended exactly ${jobs.size - inexact.length}`);
  for (const problem of [...serverErrors.slice(0, 10), ...inexact.slice(0, 10)]) console.log(`  ${problem}`);
  failed = serverErrors.length > 0 || inexact.length > 0 || grew;
  console.log(
    failed
      ? `\nFAILED: ${serverErrors.length} 5xx or wrong replays, ${inexact.length} inexact jobs${grew ? ', memory or handles grew from the middle to the end' : ''}.`
      : '\nBounded memory and handles, no 5xx, every accepted job ended exactly.',
  );
} finally {
  await runtime.stop();
  rmSync(stateDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
