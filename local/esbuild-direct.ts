import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

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
 * Not on Windows (the stand-in is a shell script); there CDK runs npx as usual.
 */
export function withEsbuildCalledDirectly<T>(projectRoot: string, cacheDir: string, run: () => T): T {
  const esbuild = join(projectRoot, 'node_modules', '.bin', 'esbuild');
  if (process.platform === 'win32' || !existsSync(esbuild)) return run();
  const binDir = join(cacheDir, 'bin');
  const previousPath = process.env.PATH ?? '';
  writeStandIn(binDir, esbuild, previousPath);
  process.env.PATH = [binDir, previousPath].filter(Boolean).join(delimiter);
  try {
    return run();
  } finally {
    process.env.PATH = previousPath;
  }
}

function writeStandIn(binDir: string, esbuild: string, pathWithoutStandIn: string): void {
  mkdirSync(binDir, { recursive: true });
  const quote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;
  const script = [
    '#!/bin/sh',
    '# Written by local/esbuild-direct.ts for the length of a local synthesis.',
    'if [ "$1" = "--no-install" ] && [ "$2" = "esbuild" ]; then',
    '  shift 2',
    `  exec ${quote(esbuild)} "$@"`,
    'fi',
    `PATH=${quote(pathWithoutStandIn)} exec npx "$@"`,
    '',
  ].join('\n');
  // Written beside, then renamed: another runtime synthesizing at the same moment runs a whole script.
  const next = join(binDir, `npx.${process.pid}`);
  writeFileSync(next, script);
  chmodSync(next, 0o755);
  renameSync(next, join(binDir, 'npx'));
}
