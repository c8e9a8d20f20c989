import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The PATH without the stand-in, for the calls it hands to the real npx. */
const REAL_PATH = 'NONPROFIT_MAILER_NPX_PATH';

/**
 * Runs a synthesis with CDK's esbuild calls going straight to the project's esbuild.
 *
 * CDK bundles each function by spawning `npx --no-install esbuild …` when esbuild is a project
 * dependency (and the lockfile is npm's). Starting npx costs about half a second of CPU, more than
 * most bundles take: with ~40 functions, a first synthesis (a fresh clone's `npm start`, CI's first
 * end-to-end runtime) spent about 14 of its 33 s starting npx. A small `npx` placed first on `PATH`
 * for the synthesis runs `node_modules/.bin/esbuild` for exactly that call and hands every other
 * call to the real npx, so the bundles and their options are CDK's own. Should CDK change how it
 * calls esbuild, the stand-in passes the call through unchanged: slower, never different.
 *
 * The stand-in runs this checkout's esbuild, the one CDK's npx finds when the runtime is started
 * from the project (as `npm start` does). Not on Windows (the stand-in is a shell script): there CDK
 * runs npx as usual.
 */
export function withEsbuildCalledDirectly<T>(projectRoot: string, cacheDir: string, run: () => T): T {
  const esbuild = join(projectRoot, 'node_modules', '.bin', 'esbuild');
  // A ':' in the folder would split the PATH entry: then CDK runs npx as usual.
  if (process.platform === 'win32' || !existsSync(esbuild) || cacheDir.includes(delimiter)) return run();
  const binDir = join(cacheDir, 'bin');
  try {
    writeStandIn(binDir, esbuild);
  } catch {
    // Only a saving: without the stand-in CDK bundles as it always does.
    return run();
  }
  const previous = { path: process.env.PATH, realPath: process.env[REAL_PATH] };
  // The PATH to hand other calls to npx on with travels beside it, not in the shared script, so
  // processes synthesizing at once with different PATHs each keep their own.
  process.env[REAL_PATH] = previous.path ?? '';
  process.env.PATH = [binDir, previous.path].filter(Boolean).join(delimiter);
  try {
    return run();
  } finally {
    restore('PATH', previous.path);
    restore(REAL_PATH, previous.realPath);
  }
}

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

function writeStandIn(binDir: string, esbuild: string): void {
  mkdirSync(binDir, { recursive: true });
  const quote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;
  const script = [
    '#!/bin/sh',
    '# Written by local/esbuild-direct.ts; first on PATH only while a local synthesis runs.',
    'if [ "$1" = "--no-install" ] && [ "$2" = "esbuild" ]; then',
    '  shift 2',
    `  exec ${quote(esbuild)} "$@"`,
    'fi',
    `PATH="$${REAL_PATH}" exec npx "$@"`,
    '',
  ].join('\n');
  // Written beside, then renamed: another runtime synthesizing at the same moment runs a whole script.
  const next = join(binDir, `npx.${process.pid}`);
  writeFileSync(next, script);
  chmodSync(next, 0o755);
  renameSync(next, join(binDir, 'npx'));
}
