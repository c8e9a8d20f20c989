import { App, type AppProps, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { readConfig } from './config';
import { MailerStack } from './mailer-stack';
import { STACK_NAME } from './stack-name';

/**
 * Builds the CDK app: used by `bin/app.ts` (the CLI), by the local runtime, which synthesizes it
 * in-process, and by the infra tests, so all three see one definition. cdk-nag's AwsSolutions and
 * Serverless packs run as validation plugins: an unacknowledged finding fails synthesis.
 */
export function createApp(props: AppProps = {}): { app: App; stack: MailerStack } {
  const app = new App(props);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  const stack = new MailerStack(app, STACK_NAME, {
    description: 'nonprofit-mailer: registry of nonprofits and bulk templated email',
    config: readConfig(app.node),
  });
  return { app, stack };
}
