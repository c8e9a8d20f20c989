import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Asks the kernel for a free port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('No port')),
      );
    });
  });
}

/**
 * The port a server given port 0 listens on. The emulators take a port to listen on: given 0, the
 * system picks one as it binds, so no other process can take it between a pick and the listen
 * (`freePort`'s race, likelier with test files starting engines at once).
 */
export function listeningPort(server: Server, what: string): number {
  const address = server.listening ? server.address() : null;
  if (typeof address !== 'object' || address === null) throw new Error(`${what} is not listening`);
  return address.port;
}

/** Closes an HTTP server now: open keep-alive connections would hold `close` until they time out. */
export function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Whether a process with this id exists (signal 0 tests without sending anything). */
export const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** How often a watchdog looks; the longest a helper outlives an owner killed outright. */
export const WATCHDOG_INTERVAL_MS = 500;

/**
 * The watchdog of one helper process group, run as a tiny Node process of its own (arguments: the
 * owner's pid, the group's id). Exit handlers cannot run when the owner is killed outright (SIGKILL,
 * or a test runner killed by a CI timeout before its teardown): the watchdog notices the owner gone
 * and kills the group; it ends by itself once the group has.
 */
const WATCHDOG_SOURCE = `
const [owner, group] = process.argv.slice(1).map(Number);
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const signal = (name) => { try { process.kill(-group, name); } catch {} };
const timer = setInterval(() => {
  if (!alive(group)) process.exit(0);
  if (alive(owner)) return;
  clearInterval(timer);
  // As a clean stop would: TERM first (DynamoDB Local closes its files), KILL if it lingers.
  signal('SIGTERM');
  const termed = Date.now();
  setInterval(() => {
    if (!alive(group)) process.exit(0);
    if (Date.now() - termed > 5000) { signal('SIGKILL'); process.exit(0); }
  }, 100);
}, ${WATCHDOG_INTERVAL_MS});
`;

function watch(group: number): void {
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG_SOURCE, String(process.pid), String(group)], {
    detached: true,
    stdio: 'ignore',
    // Nothing of this process's Node options (a loader, a debugger port) applies to it.
    env: {},
  });
  watchdog.unref();
}

/** Every helper process this one started and that has not exited, for the last-resort kill at exit. */
const started = new Set<ManagedProcess>();

/**
 * Kills, at once and synchronously, every helper process group this process started: for exit
 * handlers, including an exit during start-up, before anything else knows of them.
 */
export function killStartedProcessesNow(): void {
  for (const managed of started) managed.killNow();
}

/**
 * A helper process in a process group of its own. Java outlives a plain kill of its parent, so
 * stopping signals the whole group; a pid file lets the next start stop one a crash left behind.
 */
export class ManagedProcess {
  private constructor(
    readonly child: ChildProcess,
    private readonly pidFile: string | undefined,
  ) {}

  /** Takes charge of a child spawned with `detached: true` (so it leads its own process group). */
  static adopt(
    child: ChildProcess,
    options: { pidFile?: string; marker: string; onOutput?: (line: string) => void },
  ): ManagedProcess {
    if (child.pid === undefined) throw new Error(`Could not start ${options.marker}`);
    if (options.pidFile) {
      // Beside it, then renamed over it: a reader (a stale-process check, a test) never sees it half written.
      writeFileSync(`${options.pidFile}.next`, JSON.stringify({ pid: child.pid, marker: options.marker }), {
        mode: 0o600,
      });
      renameSync(`${options.pidFile}.next`, options.pidFile);
    }
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) if (line.trim()) options.onOutput?.(line);
      });
    }
    const managed = new ManagedProcess(child, options.pidFile);
    started.add(managed);
    watch(child.pid);
    child.once('exit', () => started.delete(managed));
    return managed;
  }

  /**
   * Stops a process group a crashed run left behind, named in its pid file. It is stopped only if
   * that pid still runs the command we started (its command line holds the marker), never by name.
   */
  static async stopStale(pidFile: string): Promise<void> {
    if (!existsSync(pidFile)) return;
    try {
      const { pid, marker } = JSON.parse(readFileSync(pidFile, 'utf8')) as { pid: number; marker: string };
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(marker)) await ManagedProcess.killGroup(pid);
    } catch {
      // No such process any more, or no /proc: nothing left to stop.
    }
    rmSync(pidFile, { force: true });
  }

  private static async killGroup(pid: number): Promise<void> {
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-pid, signal);
      } catch {
        // Already gone.
      }
    };
    signalGroup('SIGTERM');
    for (let waited = 0; waited < 5_000 && isRunning(pid); waited += 50) await sleep(50);
    if (isRunning(pid)) signalGroup('SIGKILL');
    for (let waited = 0; waited < 2_000 && isRunning(pid); waited += 50) await sleep(50);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  async stop(): Promise<void> {
    const exited = this.child.exitCode !== null || this.child.signalCode !== null;
    if (!exited) {
      const done = new Promise((resolve) => this.child.once('exit', resolve));
      await ManagedProcess.killGroup(this.pid);
      await Promise.race([done, sleep(2_000)]);
    }
    if (this.pidFile) rmSync(this.pidFile, { force: true });
  }

  /** Kills the group at once, synchronously: for process exit handlers, where nothing can be awaited. */
  killNow(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    if (this.pidFile) rmSync(this.pidFile, { force: true });
  }
}
