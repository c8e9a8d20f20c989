import { readFileSync } from 'node:fs';
import { Template } from 'aws-cdk-lib/assertions';
import { createApp } from '../../lib/app';
import type { MailerStack } from '../../lib/mailer-stack';
import { LOCAL_CONTEXT, PROJECT_ROOT } from '../../local/synth';
import type { CfnTemplate } from '../../local/template';

const projectContext = (): Record<string, unknown> =>
  (JSON.parse(readFileSync(`${PROJECT_ROOT}cdk.json`, 'utf8')) as { context: Record<string, unknown> })
    .context;

/** Syntheses made in this test process, by context: many tests read the same one. */
const made = new Map<string, { stack: MailerStack; template: CfnTemplate; assertions: Template }>();

/**
 * The stack as the CLI would build it (cdk.json's context, plus any override; the local runtime's
 * From address unless the test gives one, as cdk.json has none), without bundling
 * the functions: assets keep stable hashes and synthesis takes about a second. Made once per
 * context in a test process (infra files share theirs, see vitest.config.ts): the stack and its
 * assertions are for reading; the template is a copy of its own for each caller, free to change.
 */
export function synthesizeForTests(context: Record<string, unknown> = {}): {
  stack: MailerStack;
  template: CfnTemplate;
  assertions: Template;
} {
  // `undefined` is kept in the key: `{ apiKeys: undefined }` removes the local default keys.
  const key = JSON.stringify(context, (_, value: unknown) => (value === undefined ? '(undefined)' : value));
  let synthesis = made.get(key);
  if (!synthesis) {
    const { stack } = createApp({
      context: {
        ...LOCAL_CONTEXT,
        ...projectContext(),
        ...context,
        'aws:cdk:bundling-stacks': [],
      },
    });
    const assertions = Template.fromStack(stack);
    synthesis = { stack, assertions, template: assertions.toJSON() as CfnTemplate };
    made.set(key, synthesis);
  }
  return { ...synthesis, template: structuredClone(synthesis.template) };
}
