import { createHash } from 'node:crypto';
import { type Dirent, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * Everything a function bundle is made from besides its bundling options: the handler sources
 * (`lambdas/`, and the contract `GET /openapi.json` serves), the locked dependency versions, the
 * TypeScript settings esbuild reads, and esbuild's own version. A test holds this list to every
 * module esbuild reads for each function.
 */
export const BUNDLE_INPUTS = [
  'lambdas',
  'openapi.json',
  'package.json',
  'package-lock.json',
  // What is installed, which the lockfile alone does not say (a checkout without `npm ci`).
  'node_modules/.package-lock.json',
  'tsconfig.json',
  'node_modules/esbuild/package.json',
];

/**
 * The context under which functions' bundles are named by their inputs: set by the local runtime's
 * synthesis only. `cdk deploy` keeps CDK's default, a hash of the bundle itself, so what reaches
 * AWS is always named by what it contains.
 */
export const BUNDLES_BY_INPUTS_CONTEXT = 'nonprofit-mailer:bundles-named-by-inputs';

let memo: string | undefined;

/**
 * A digest of what the bundles are built from. As a function's custom asset hash in local
 * synthesis (CDK adds the bundling options to it), it names a bundle by its inputs before esbuild
 * runs, so a synthesis that finds `asset.<hash>` already in its output folder skips bundling; any
 * change to a source, the dependencies or esbuild gives every function a new hash, so a stale
 * bundle is never reused.
 * Reading the ~100 sources takes milliseconds; it is computed once per process.
 */
export function bundleFingerprint(): string {
  memo ??= fingerprintOf(BUNDLE_INPUTS);
  return memo;
}

/** A digest of the files at these paths (relative to the project; a folder stands for every file under it). */
export function fingerprintOf(inputs: readonly string[], root: string = PROJECT_ROOT): string {
  const hash = createHash('sha256');
  for (const file of inputs.flatMap((input) => filesUnder(join(root, input)))) {
    // The path too: a file renamed or moved changes what imports resolve to.
    hash.update(`${relative(root, file)}\0`);
    hash.update(readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex');
}

/** The files under a path (the path itself if it is a file), in a stable order. */
function filesUnder(path: string): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(path, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') return [path];
    throw error;
  }
  return entries
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((entry) => {
      const child = join(path, entry.name);
      return entry.isDirectory() ? filesUnder(child) : [child];
    });
}
