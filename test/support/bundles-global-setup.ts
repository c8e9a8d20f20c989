import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesizeStack } from '../../local/synth';

/**
 * Bundles the functions once before the end-to-end files start their runtimes, into the shared
 * bundle cache (see `local/bundle-cache.ts`): every runtime then reuses them instead of running
 * esbuild 25 times itself, two files at once. Nothing to tear down: the cache outlives the run.
 */
export default async function setup(): Promise<void> {
  const outdir = mkdtempSync(join(tmpdir(), 'mailer-bundles-'));
  try {
    await synthesizeStack(outdir);
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
