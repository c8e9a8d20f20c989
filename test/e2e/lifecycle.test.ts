import { spawn } from 'node:child_process';
import { chmodSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../local/synth';
import {
  apiClient,
  isRunning,
  type RuntimeProcess,
  runtimeContextJson,
  startRuntimeProcess,
} from '../support/runtime-process';

const stateDir = mkdtempSync(join(tmpdir(), 'mailer-lifecycle-'));
const started: RuntimeProcess[] = [];

async function start(): Promise<RuntimeProcess> {
  const runtime = await startRuntimeProcess({ stateDir });
  started.push(runtime);
  return runtime;
}

async function waitUntilGone(pid: number): Promise<boolean> {
  for (let waited = 0; waited < 10_000 && isRunning(pid); waited += 100) await sleep(100);
  return !isRunning(pid);
}

/** Every process below `pid`, children first found first (Linux's /proc). */
function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    // Gone already: no children to find.
  }
  return children.flatMap((child) => [child, ...descendants(child)]);
}

/** Polls for a value (a printed pid, the banner): a runtime starts in seconds, two minutes on a loaded machine. */
async function waitUntil<T>(read: () => T | undefined): Promise<T> {
  for (let waited = 0; waited < 150_000; waited += 100) {
    const value = read();
    if (value !== undefined) return value;
    await sleep(100);
  }
  throw new Error('Timed out');
}

afterAll(async () => {
  for (const runtime of started) {
    await runtime.stop('SIGKILL');
    try {
      process.kill(-runtime.javaPid(), 'SIGKILL');
    } catch {
      // Already stopped, as it should be.
    }
  }
  rmSync(stateDir, { recursive: true, force: true });
});

describe('the local runtime as a process', () => {
  it('stops everything on SIGTERM and keeps data and the API key across a restart', async () => {
    const first = await start();
    const java = first.javaPid();
    const created = await apiClient(first.url, first.apiKey)('POST', '/nonprofits', {
      email: 'kept@restart.example.org',
      name: 'Kept',
      address: '1 Disk St',
    });
    expect(created.status).toBe(201);

    await first.stop('SIGTERM');
    expect(first.child.exitCode).toBe(0);
    expect(await waitUntilGone(java)).toBe(true);

    const second = await start();
    expect(second.apiKey).toBe(first.apiKey);
    const read = await apiClient(second.url, second.apiKey)('GET', '/nonprofits/kept@restart.example.org');
    expect(read).toMatchObject({ status: 200, body: { name: 'Kept' } });

    const secondJava = second.javaPid();
    await second.stop('SIGINT');
    expect(await waitUntilGone(secondJava)).toBe(true);
  });

  it('stops the Java process of a runtime killed outright, and starts again with its data', async () => {
    const crashed = await start();
    const orphan = crashed.javaPid();
    // SIGKILL gives the runtime no chance to clean up: the watchdog it left beside Java stops it.
    await crashed.stop('SIGKILL');
    expect(await waitUntilGone(orphan)).toBe(true);

    const next = await start();
    expect(
      (await apiClient(next.url, next.apiKey)('GET', '/nonprofits/kept@restart.example.org')).status,
    ).toBe(200);

    const java = next.javaPid();
    await next.stop('SIGTERM');
    expect(await waitUntilGone(java)).toBe(true);
  });

  it('stops itself and its Java process when its parent is killed outright', async () => {
    // The runtime's parent is a shell, killed with SIGKILL as a CI timeout may kill a test runner.
    const shell = spawn('sh', ['-c', `'${process.execPath}' --import tsx bin/local.ts & echo $!; wait`], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, PORT: '0', LOCAL_STATE_DIR: stateDir, CDK_CONTEXT_JSON: runtimeContextJson() },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const lines: string[] = [];
    shell.stdout?.setEncoding('utf8').on('data', (chunk: string) => lines.push(...chunk.split('\n')));
    let exited = false;
    shell.once('exit', () => {
      exited = true;
    });
    const runtimePid = await waitUntil(() => Number(lines[0]) || undefined);
    await waitUntil(() => {
      if (exited) throw new Error('The runtime exited before it was ready');
      return lines.some((line) => line.includes('Ctrl-C stops everything')) || undefined;
    });
    const java = (JSON.parse(readFileSync(join(stateDir, 'dynamodb-local.pid'), 'utf8')) as { pid: number })
      .pid;

    shell.kill('SIGKILL');
    expect(await waitUntilGone(runtimePid)).toBe(true);
    expect(await waitUntilGone(java)).toBe(true);
  });

  it('as `npm start`, keeps its state private and stops every process on SIGTERM to npm itself', async () => {
    // A state directory as an older version (or a user) left it: readable by everyone.
    chmodSync(stateDir, 0o755);
    writeFileSync(join(stateDir, 'left-behind.txt'), 'someone@example.org', { mode: 0o644 });
    const npm = spawn('npm', ['start'], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, PORT: '0', LOCAL_STATE_DIR: stateDir, CDK_CONTEXT_JSON: runtimeContextJson() },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const lines: string[] = [];
    npm.stdout?.setEncoding('utf8').on('data', (chunk: string) => lines.push(...chunk.split('\n')));
    await waitUntil(() => {
      if (npm.exitCode !== null) throw new Error('npm start exited before the runtime was ready');
      return lines.some((line) => line.includes('Ctrl-C stops everything')) || undefined;
    });

    const loose: string[] = [];
    const walk = (path: string) => {
      const stat = lstatSync(path);
      if (stat.isSymbolicLink()) return;
      const wanted = stat.isDirectory() ? 0o700 : 0o600;
      if ((stat.mode & 0o777 & ~wanted) !== 0) loose.push(`${path} ${(stat.mode & 0o777).toString(8)}`);
      if (stat.isDirectory()) for (const entry of readdirSync(path)) walk(join(path, entry));
    };
    walk(stateDir);
    expect(loose).toEqual([]);

    // What a supervisor or a container's stop does: SIGTERM to the process it started, npm.
    const processes = descendants(npm.pid as number);
    expect(processes.length).toBeGreaterThanOrEqual(3); // the shell, the runtime, Java (and its watchdog)
    npm.kill('SIGTERM');
    for (const pid of processes) expect(await waitUntilGone(pid), `process ${pid}`).toBe(true);
  });

  it('stops everything on SIGHUP, as when its terminal is closed', async () => {
    const runtime = await start();
    const java = runtime.javaPid();
    await runtime.stop('SIGHUP');
    expect(runtime.child.exitCode).toBe(0);
    expect(await waitUntilGone(java)).toBe(true);
  });

  it('stops everything, without spinning, once the reader of its output is gone', async () => {
    const runtime = await start();
    const java = runtime.javaPid();
    const exited = new Promise<void>((resolve) => runtime.child.once('exit', () => resolve()));
    // The reading end of its pipes goes away, as when the program that started it is killed.
    runtime.child.stdout?.destroy();
    runtime.child.stderr?.destroy();
    // Its next line of output finds no reader: accepting a job logs one.
    await apiClient(runtime.url, runtime.apiKey)('POST', '/send-email', {
      emails: ['kept@restart.example.org'],
      template: 'Hi {name}',
    }).catch(() => undefined);
    const stopped = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]);
    expect(stopped).toBe(true);
    expect(await waitUntilGone(java)).toBe(true);
  });
});
