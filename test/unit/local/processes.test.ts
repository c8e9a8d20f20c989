import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { isRunning, ManagedProcess, WATCHDOG_INTERVAL_MS } from '../../../local/processes';
import { PROJECT_ROOT } from '../../../local/synth';

const dir = mkdtempSync(join(tmpdir(), 'mailer-processes-'));
const spawned: number[] = [];

/** A process that idles for a minute, leading its own group, with a marker on its command line. */
function idler(marker: string): number {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)', marker], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  spawned.push(child.pid as number);
  return child.pid as number;
}

async function gone(pid: number, withinMs: number): Promise<boolean> {
  for (let waited = 0; waited < withinMs && isRunning(pid); waited += 50) await sleep(50);
  return !isRunning(pid);
}

afterAll(() => {
  for (const pid of spawned) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Stopped by the test, as it should be.
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('helper processes', () => {
  it('stops the process group a crashed run left in its pid file, if it still runs our command', async () => {
    const pid = idler('stale-marker-test');
    const pidFile = join(dir, 'stale.pid');
    writeFileSync(pidFile, JSON.stringify({ pid, marker: 'stale-marker-test' }));
    await ManagedProcess.stopStale(pidFile);
    expect(isRunning(pid)).toBe(false);
  });

  it('leaves alone a process whose command is not ours (its pid was reused)', async () => {
    const pid = idler('someone-else');
    const pidFile = join(dir, 'reused.pid');
    writeFileSync(pidFile, JSON.stringify({ pid, marker: 'stale-marker-test' }));
    await ManagedProcess.stopStale(pidFile);
    expect(isRunning(pid)).toBe(true);
  });

  // Waits on real time: the watchdog looks every WATCHDOG_INTERVAL_MS (500 ms) and gives a TERM'd
  // helper a moment to exit; the bound is generous for a loaded machine.
  it('stops a helper once its owner is killed outright, with no exit handler run', async () => {
    const owner = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `import { spawn } from 'node:child_process';
         import { ManagedProcess } from './local/processes.ts';
         const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { detached: true, stdio: 'ignore' });
         ManagedProcess.adopt(child, { marker: 'helper' });
         console.log(child.pid);
         setTimeout(() => {}, 60_000);`,
      ],
      { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const helper = await new Promise<number>((resolve) =>
      owner.stdout?.setEncoding('utf8').once('data', (line: string) => resolve(Number(line.trim()))),
    );
    spawned.push(helper);
    expect(isRunning(helper)).toBe(true);

    owner.kill('SIGKILL');
    expect(await gone(helper, 20 * WATCHDOG_INTERVAL_MS)).toBe(true);
  });
});
