import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createApp, STACK_NAME } from '../lib/app';
import type { CfnTemplate } from './template';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface SynthesizedStack {
  template: CfnTemplate;
  /** The cloud assembly folder: each function's `aws:asset:path` is relative to it. */
  outdir: string;
}

/**
 * Synthesizes the CDK app in-process, as `cdk synth` would: cdk.json's context first, then
 * `CDK_CONTEXT_JSON` over it (the variable the CDK CLI itself uses to hand context to an app), and
 * asset metadata on, so each function's bundled asset can be found in the output folder.
 */
export function synthesizeStack(outdir: string): SynthesizedStack {
  const cdkJson = JSON.parse(readFileSync(`${PROJECT_ROOT}cdk.json`, 'utf8')) as {
    context?: Record<string, unknown>;
  };
  const { app } = createApp({
    outdir,
    context: cdkJson.context ?? {},
    postCliContext: { 'aws:cdk:enable-asset-metadata': true },
  });
  const assembly = app.synth();
  const stack = assembly.getStackByName(STACK_NAME);
  return { template: stack.template as CfnTemplate, outdir: assembly.directory };
}
