import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TABLE } from '../../lambdas/core/bindings';
import { ProjectFunction } from '../../lib/constructs/project-function';
import { synthesizeForTests } from '../support/synth';

const { stack, template } = synthesizeForTests();
const functions = stack.node
  .findAll()
  .filter((construct): construct is ProjectFunction => construct instanceof ProjectFunction);
/** What the test process itself needs of its environment; everything else is taken away. */
const KEPT = /^(PATH|HOME|TMPDIR|TZ|NODE_.*|VITEST.*|FORCE_COLOR|NO_COLOR|CI)$/;
const saved = { ...process.env };

afterEach(() => {
  for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
  Object.assign(process.env, saved);
});

/** The function's environment from the template, with each reference (a table name, a queue URL) made a plain value. */
function templateEnvironment(fn: ProjectFunction): Record<string, string> {
  const logicalId = stack.getLogicalId(fn.node.defaultChild as CfnFunction);
  const variables = (template.Resources[logicalId]?.Properties as { Environment?: { Variables?: object } })
    ?.Environment?.Variables;
  return Object.fromEntries(
    Object.entries(variables ?? {}).map(([name, value]) => [
      name,
      typeof value === 'string' ? value : `https://resolved.example/${name}`,
    ]),
  );
}

/** Loads a handler module as Lambda's init phase does, with exactly this environment. */
async function coldStart(entry: string, environment: Record<string, string>) {
  // Nothing of this shell's environment may stand in for a setting the template forgot.
  for (const name of Object.keys(process.env)) if (!KEPT.test(name)) delete process.env[name];
  Object.assign(process.env, environment, { AWS_REGION: 'us-east-1', POWERTOOLS_LOG_LEVEL: 'SILENT' });
  vi.resetModules();
  return (await import(`../../lambdas/${entry}`)) as { handler?: unknown };
}

describe('every function starts with only what the template gives it', () => {
  it.each(functions.map((fn) => [fn.entry, fn] as const))('%s', async (entry, fn) => {
    const module = await coldStart(entry, templateEnvironment(fn));
    expect(typeof module.handler).toBe('function');
  });

  it('fails at cold start, naming the variable, when the stack forgot a binding', async () => {
    const getJob = functions.find((fn) => fn.entry === 'api/get-job.ts');
    if (!getJob) throw new Error('No GET /jobs/{job_id} function');
    const { [TABLE.jobContents]: _, ...withoutContents } = templateEnvironment(getJob);
    await expect(coldStart(getJob.entry, withoutContents)).rejects.toThrow(TABLE.jobContents);
  });
});
