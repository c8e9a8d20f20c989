// npm run bench:import [-- --rows 1000]: POST /nonprofits/import of a CSV file against the local
// runtime as npm start runs it: a first import (every row created), the same file again (every row
// exists, nothing written) and the file with every address changed under on_conflict=update.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { operatorFirst } from '../local/api-keys';
import { startLocalRuntime } from '../local/runtime';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000' } } });
const rows = Number(values.rows);

const stateDir = mkdtempSync(join(tmpdir(), 'mailer-import-bench-'));
console.log('Starting the local runtime…');
const runtime = await startLocalRuntime({ stateDir, port: 0, log: () => undefined });
const apiKey = operatorFirst(runtime.apiKeys)[0]?.value ?? '';

const csv = (street: string) =>
  [
    'email,name,address',
    ...Array.from(
      { length: rows },
      (_, n) => `member${n}@import-bench.example.org,"Member ${n}, Inc.","${n} ${street}"`,
    ),
  ].join('\r\n');

async function timedImport(label: string, body: string, query = ''): Promise<void> {
  const started = performance.now();
  const response = await fetch(`${runtime.url}/nonprofits/import${query}`, {
    method: 'POST',
    headers: { 'x-api-key': apiKey, 'content-type': 'text/csv' },
    body,
  });
  const answer = (await response.json()) as Record<string, unknown>;
  const seconds = (performance.now() - started) / 1000;
  const { created, updated, exists, invalid } = answer;
  console.log(
    `${label.padEnd(34)} ${response.status}  ${seconds.toFixed(2)} s  created ${created} updated ${updated} exists ${exists} invalid ${invalid}`,
  );
  if (response.status !== 200)
    throw new Error(`Import answered ${response.status}: ${JSON.stringify(answer)}`);
  // The route allows one import every two seconds per key.
  await sleep(2_100);
}

try {
  console.log(`Importing ${rows} rows of CSV (${Buffer.byteLength(csv('Main St'))} bytes)…`);
  await timedImport('first import (cold function)', csv('Main St'));
  await timedImport('the same file again', csv('Main St'));
  await timedImport('every address changed, update', csv('Side St'), '?on_conflict=update');
  await timedImport('the changed file again, update', csv('Side St'), '?on_conflict=update');
} finally {
  await runtime.stop();
  rmSync(stateDir, { recursive: true, force: true });
}
