/**
 * Stops this process (as SIGTERM does, so vitest tears down its workers, whose runtimes and Java
 * processes then stop too) once its parent is gone. `npm test` runs vitest under a shell, and a
 * SIGTERM to npm (a CI timeout, a developer's `kill`) ends npm and the shell but not vitest, which
 * would otherwise run the whole suite on, orphaned, with every engine it starts.
 */
export function stopWithParent(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
  }, 1_000).unref();
}
