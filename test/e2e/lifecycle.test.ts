import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { apiClient, isRunning, type RuntimeProcess, startRuntimeProcess } from '../support/runtime-process';

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

  it('starts again after a crash, stopping the Java process the crashed run left behind', async () => {
    const crashed = await start();
    const orphan = crashed.javaPid();
    await crashed.stop('SIGKILL');
    // SIGKILL gives the runtime no chance to clean up: its Java process group is still running.
    expect(isRunning(orphan)).toBe(true);

    const next = await start();
    expect(await waitUntilGone(orphan)).toBe(true);
    expect(
      (await apiClient(next.url, next.apiKey)('GET', '/nonprofits/kept@restart.example.org')).status,
    ).toBe(200);

    const java = next.javaPid();
    await next.stop('SIGTERM');
    expect(await waitUntilGone(java)).toBe(true);
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
