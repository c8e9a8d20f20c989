import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesizeStack } from '../../local/synth';
import { E2E_CONTEXTS } from './e2e-contexts';
import { runtimeContextJson } from './runtime-process';

/**
 * Before the end-to-end files start their runtimes: synthesizes each context they use, in this one
 * process, into the shared caches (bundles: `local/bundle-cache.ts`; syntheses: `local/synth.ts`).
 * The first synthesis bundles the functions and loads the CDK and cdk-nag; the others take about a
 * second each. Every runtime then starts from the cache instead of loading the CDK itself (about
 * 9 s of CPU each, with two or three files starting at once on two cores). Nothing to tear down:
 * the caches outlive the run.
 */
export default async function setup(): Promise<void> {
  const given = process.env.CDK_CONTEXT_JSON;
  const outdir = mkdtempSync(join(tmpdir(), 'mailer-syntheses-'));
  try {
    for (const [index, context] of E2E_CONTEXTS.entries()) {
      // What the runtime's synthesis is keyed by, as `startRuntimeProcess` hands it over.
      process.env.CDK_CONTEXT_JSON = runtimeContextJson(context);
      await synthesizeStack(join(outdir, String(index)));
    }
  } finally {
    if (given === undefined) delete process.env.CDK_CONTEXT_JSON;
    else process.env.CDK_CONTEXT_JSON = given;
    rmSync(outdir, { recursive: true, force: true });
  }
}
