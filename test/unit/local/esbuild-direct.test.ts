import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { withEsbuildCalledDirectly } from '../../../local/esbuild-direct';
import { PROJECT_ROOT } from '../../../local/synth';

const cacheDirs: string[] = [];
afterEach(() => {
  for (const dir of cacheDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const npx = (...args: string[]) =>
  spawnSync('npx', args, { env: { ...process.env }, encoding: 'utf8', cwd: PROJECT_ROOT });

describe.skipIf(process.platform === 'win32')('local synthesis calling esbuild directly', () => {
  it("answers CDK's `npx --no-install esbuild` with the project's esbuild, hands other npx calls on, and leaves PATH as it was", () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'esbuild-direct-'));
    cacheDirs.push(cacheDir);
    const pathBefore = process.env.PATH;

    const seen = withEsbuildCalledDirectly(PROJECT_ROOT, cacheDir, () => ({
      found: spawnSync('sh', ['-c', 'command -v npx'], {
        env: { ...process.env },
        encoding: 'utf8',
      }).stdout.trim(),
      esbuild: npx('--no-install', 'esbuild', '--version'),
      other: npx('--version'),
    }));

    // The stand-in is the npx the synthesis finds, and it answers esbuild's call.
    expect(seen.found).toBe(join(cacheDir, 'bin', 'npx'));
    expect(seen.esbuild.status).toBe(0);
    expect(seen.esbuild.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    // Any other call reaches the real npx (npm's version, not esbuild's).
    expect(seen.other.status).toBe(0);
    expect(seen.other.stdout.trim()).toBe(npx('--version').stdout.trim());
    expect(process.env.PATH).toBe(pathBefore);
    expect(process.env.NONPROFIT_MAILER_NPX_PATH).toBeUndefined();
  });

  it('restores PATH when the synthesis throws', () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'esbuild-direct-'));
    cacheDirs.push(cacheDir);
    const pathBefore = process.env.PATH;
    expect(() =>
      withEsbuildCalledDirectly(PROJECT_ROOT, cacheDir, () => {
        throw new Error('cdk-nag refused');
      }),
    ).toThrow('cdk-nag refused');
    expect(process.env.PATH).toBe(pathBefore);
  });
});
