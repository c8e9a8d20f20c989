import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLE_INPUTS, fingerprintOf } from '../../lib/bundle-fingerprint';
import { ProjectFunction } from '../../lib/constructs/project-function';
import { PROJECT_ROOT } from '../../local/synth';
import { synthesizeForTests } from '../support/synth';

const scratch = mkdtempSync(join(tmpdir(), 'mailer-fingerprint-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('bundles named by their inputs', () => {
  it('fingerprints every file esbuild reads for any function, so a changed source is never served stale', async () => {
    const { stack } = synthesizeForTests();
    const entries = stack.node
      .findAll()
      .filter((construct): construct is ProjectFunction => construct instanceof ProjectFunction)
      .map((fn) => join(PROJECT_ROOT, 'lambdas', fn.entry));
    expect(entries.length).toBeGreaterThan(20);
    const { metafile } = await build({
      entryPoints: entries,
      bundle: true,
      write: false,
      metafile: true,
      outdir: scratch,
      platform: 'node',
      format: 'esm',
      external: ['@aws-sdk/*'],
      logLevel: 'silent',
    });
    const unfingerprinted = Object.keys(metafile.inputs)
      .map((input) => relative(PROJECT_ROOT, join(process.cwd(), input)))
      // Dependencies are pinned by the lockfile, which is fingerprinted.
      .filter((input) => !input.startsWith('node_modules/'))
      .filter(
        (input) => !BUNDLE_INPUTS.some((covered) => input === covered || input.startsWith(`${covered}/`)),
      );
    expect(unfingerprinted).toEqual([]);
  });

  it('changes the fingerprint when a file changes, is added, or moves', () => {
    mkdirSync(join(scratch, 'src', 'core'), { recursive: true });
    writeFileSync(join(scratch, 'src', 'core', 'a.ts'), 'export const a = 1;');
    const original = fingerprintOf(['src'], scratch);
    expect(fingerprintOf(['src'], scratch)).toBe(original);

    writeFileSync(join(scratch, 'src', 'core', 'a.ts'), 'export const a = 2;');
    const edited = fingerprintOf(['src'], scratch);
    expect(edited).not.toBe(original);

    writeFileSync(join(scratch, 'src', 'b.ts'), '');
    const added = fingerprintOf(['src'], scratch);
    expect(added).not.toBe(edited);

    renameSync(join(scratch, 'src', 'b.ts'), join(scratch, 'src', 'core', 'b.ts'));
    expect(fingerprintOf(['src'], scratch)).not.toBe(added);
  });
});
