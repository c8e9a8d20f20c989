import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Every CDK app a test synthesizes without an output folder of its own writes to this one (the
 * CLI's `CDK_OUTDIR`, which the App reads): one per test process, inside the folder the global
 * setup (`cdk-outdir-global-setup.ts`) made and removes after the run. Left to itself, each
 * synthesis makes a new `cdk.out*` folder in the temporary directory that nothing removes:
 * thousands after a day of test runs.
 */
const parent = process.env.MAILER_TEST_CDK_OUTDIRS;
if (parent && !process.env.CDK_OUTDIR) process.env.CDK_OUTDIR = mkdtempSync(join(parent, 'worker-'));
