import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp, STACK_NAME } from '../lib/app';
import { type MailerConfig, readConfig } from '../lib/config';
import type { CfnTemplate } from './template';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface SynthesizedStack {
  template: CfnTemplate;
  /** The cloud assembly folder: each function's `aws:asset:path` is relative to it. */
  outdir: string;
  /**
   * The context as the app read it. The runtime takes from the template all it serves; only what
   * the context says of the AWS account itself (`sesSandbox`) shapes the emulated account.
   */
  config: MailerConfig;
}

/**
 * The sender of the emails when running locally, where no SES identity has to be verified: the
 * stack requires a `fromAddress` with the `ses` transport. `.localhost` names can never be delivered.
 */
export const LOCAL_FROM_ADDRESS = 'mailer@nonprofit-mailer.localhost';

/**
 * Synthesizes the CDK app in-process, as `cdk synth` would: cdk.json's context first, then
 * `CDK_CONTEXT_JSON` over it (the variable the CDK CLI itself uses to hand context to an app), and
 * asset metadata on, so each function's bundled asset can be found in the output folder. Local
 * defaults (the sender) sit under both, so either overrides them.
 */
export function synthesizeStack(outdir: string): SynthesizedStack {
  const cdkJson = JSON.parse(readFileSync(`${PROJECT_ROOT}cdk.json`, 'utf8')) as {
    context?: Record<string, unknown>;
  };
  const { app } = createApp({
    outdir,
    context: { fromAddress: LOCAL_FROM_ADDRESS, ...cdkJson.context },
    postCliContext: { 'aws:cdk:enable-asset-metadata': true },
  });
  const assembly = app.synth();
  const stack = assembly.getStackByName(STACK_NAME);
  return {
    template: stack.template as CfnTemplate,
    outdir: assembly.directory,
    config: readConfig(app.node),
  };
}

/** The template a runtime started on `stateDir` synthesized and serves (as `startLocalRuntime` writes it). */
export function servedTemplate(stateDir: string): CfnTemplate {
  return JSON.parse(
    readFileSync(join(stateDir, 'cdk.out', `${STACK_NAME}.template.json`), 'utf8'),
  ) as CfnTemplate;
}

/**
 * Gives the next in-process synthesis these context values, under any the caller's
 * `CDK_CONTEXT_JSON` already holds (the variable the CDK CLI itself hands context through).
 * Returns the context now in force.
 */
export function contextDefaults(defaults: Record<string, unknown>): Record<string, unknown> {
  const context = {
    ...defaults,
    ...(JSON.parse(process.env.CDK_CONTEXT_JSON ?? '{}') as Record<string, unknown>),
  };
  process.env.CDK_CONTEXT_JSON = JSON.stringify(context);
  return context;
}
