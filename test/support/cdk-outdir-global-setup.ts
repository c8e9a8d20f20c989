import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The folder each test process's CDK output goes under (see `cdk-outdir.ts`), removed after the run. */
export default function setup(): () => void {
  const parent = mkdtempSync(join(tmpdir(), 'mailer-test-cdk-'));
  process.env.MAILER_TEST_CDK_OUTDIRS = parent;
  return () => rmSync(parent, { recursive: true, force: true });
}
