import { readFileSync } from 'node:fs';
import { Template } from 'aws-cdk-lib/assertions';
import { createApp } from '../../lib/app';
import type { MailerStack } from '../../lib/mailer-stack';
import { LOCAL_CONTEXT, PROJECT_ROOT } from '../../local/synth';
import type { CfnTemplate } from '../../local/template';

const projectContext = (): Record<string, unknown> =>
  (JSON.parse(readFileSync(`${PROJECT_ROOT}cdk.json`, 'utf8')) as { context: Record<string, unknown> })
    .context;

/**
 * The stack as the CLI would build it (cdk.json's context, plus any override; the local runtime's
 * From address unless the test gives one, as cdk.json has none), without bundling
 * the functions: assets keep stable hashes and synthesis takes about a second.
 */
export function synthesizeForTests(context: Record<string, unknown> = {}): {
  stack: MailerStack;
  template: CfnTemplate;
  assertions: Template;
} {
  const { stack } = createApp({
    context: {
      ...LOCAL_CONTEXT,
      ...projectContext(),
      ...context,
      'aws:cdk:bundling-stacks': [],
    },
  });
  const assertions = Template.fromStack(stack);
  return { stack, assertions, template: assertions.toJSON() as CfnTemplate };
}
