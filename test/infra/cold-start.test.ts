import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TABLE } from '../../lambdas/core/bindings';
import { ProjectFunction } from '../../lib/constructs/project-function';
import type { MailerStack } from '../../lib/mailer-stack';
import type { CfnTemplate } from '../../local/template';
import { synthesizeForTests } from '../support/synth';

/** What the test process itself needs of its environment; everything else is taken away. */
const KEPT = /^(PATH|HOME|TMPDIR|TZ|NODE_.*|VITEST.*|FORCE_COLOR|NO_COLOR|CI)$/;
/** Variables the Lambda runtime sets itself: a function's configuration may not set them. */
const RESERVED =
  /^(_HANDLER|_X_AMZN_TRACE_ID|AWS_REGION|AWS_DEFAULT_REGION|AWS_EXECUTION_ENV|AWS_LAMBDA_.*|AWS_ACCESS_KEY|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|LAMBDA_TASK_ROOT|LAMBDA_RUNTIME_DIR)$/;
const saved = { ...process.env };

afterEach(() => {
  for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
  Object.assign(process.env, saved);
});

interface Synthesized {
  stack: MailerStack;
  template: CfnTemplate;
}

const functionsOf = ({ stack }: Synthesized) =>
  stack.node
    .findAll()
    .filter((construct): construct is ProjectFunction => construct instanceof ProjectFunction);

function propertiesOf({ stack, template }: Synthesized, fn: ProjectFunction) {
  const logicalId = stack.getLogicalId(fn.node.defaultChild as CfnFunction);
  return template.Resources[logicalId]?.Properties as {
    FunctionName?: unknown;
    MemorySize?: number;
    Environment?: { Variables?: Record<string, unknown> };
  };
}

/**
 * A value CloudFormation resolves at deployment: a join keeps its literal parts (a JSON list of the
 * API keys stays JSON) with each reference made a plain word; a bare reference, a URL.
 */
function resolvedValue(name: string, value: unknown): string {
  const join = (value as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  if (join) return join[1].map((part) => (typeof part === 'string' ? part : 'resolved')).join(join[0]);
  return `https://resolved.example/${name}`;
}

/** The function's environment from the template, with each reference (a table name, a queue URL) made a plain value. */
function templateEnvironment(synthesized: Synthesized, fn: ProjectFunction): Record<string, string> {
  const variables = propertiesOf(synthesized, fn)?.Environment?.Variables;
  return Object.fromEntries(
    Object.entries(variables ?? {}).map(([name, value]) => [
      name,
      typeof value === 'string' ? value : resolvedValue(name, value),
    ]),
  );
}

/**
 * What the Lambda runtime itself sets in every execution environment, beside the template's
 * variables: the AWS SDK clients (DynamoDB, SQS, SES) take their region from `AWS_REGION`. No
 * credentials: nothing may call AWS while a module loads.
 */
function runtimeEnvironment(synthesized: Synthesized, fn: ProjectFunction): Record<string, string> {
  return {
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
    AWS_LAMBDA_FUNCTION_NAME: `NonprofitMailer-${fn.node.id}`,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(propertiesOf(synthesized, fn)?.MemorySize ?? 128),
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    LAMBDA_TASK_ROOT: '/var/task',
    _HANDLER: 'index.handler',
  };
}

/** Loads a handler module as Lambda's init phase does, with exactly this environment. */
async function coldStart(entry: string, environment: Record<string, string>) {
  // Nothing of this shell's environment may stand in for a setting the template forgot.
  for (const name of Object.keys(process.env)) if (!KEPT.test(name)) delete process.env[name];
  // Quiet logs: the only variable that is the test's own.
  Object.assign(process.env, environment, { POWERTOOLS_LOG_LEVEL: 'SILENT' });
  vi.resetModules();
  return (await import(`../../lambdas/${entry}`)) as { handler?: unknown };
}

const startsWithTemplate = (synthesized: Synthesized, fn: ProjectFunction) =>
  coldStart(fn.entry, { ...templateEnvironment(synthesized, fn), ...runtimeEnvironment(synthesized, fn) });

const CONSUMER_ENTRY = 'worker/send-emails.ts';

describe.each<[string, Record<string, unknown>, Record<string, string>]>([
  [
    'the default configuration (SES, rendered emails kept)',
    {},
    { EMAIL_TRANSPORT: 'ses', STORE_RENDERED_EMAILS: 'true' },
  ],
  [
    'SES with a reply-to address, a configuration set, in the sandbox',
    {
      fromAddress: 'news@example.org',
      replyTo: 'replies@example.org',
      sesConfigurationSet: 'marketing',
      sesSandbox: true,
      sesMaxSendRate: 1,
    },
    {
      EMAIL_TRANSPORT: 'ses',
      SES_FROM_ADDRESS: 'news@example.org',
      SES_REPLY_TO: 'replies@example.org',
      SES_CONFIGURATION_SET: 'marketing',
      SEND_RATE_PER_ENVIRONMENT: '0.5',
    },
  ],
  [
    'the record transport, rendered emails not kept',
    { transport: 'record', storeRenderedEmails: false },
    { EMAIL_TRANSPORT: 'record', STORE_RENDERED_EMAILS: 'false' },
  ],
])('with %s, every function starts with only what the template gives it', (_, context, consumerGets) => {
  const synthesized = synthesizeForTests(context);
  const functions = functionsOf(synthesized);

  it('(the consumer is given this configuration)', () => {
    const consumer = functions.find((fn) => fn.entry === CONSUMER_ENTRY);
    if (!consumer) throw new Error('No consumer function');
    expect(templateEnvironment(synthesized, consumer)).toMatchObject(consumerGets);
  });

  it('(no template sets a variable the Lambda runtime reserves)', () => {
    for (const fn of functions) {
      const reserved = Object.keys(templateEnvironment(synthesized, fn)).filter((name) =>
        RESERVED.test(name),
      );
      expect(reserved, fn.entry).toEqual([]);
    }
  });

  it.each(functions.map((fn) => [fn.entry, fn] as const))('%s', async (_entry, fn) => {
    const module = await startsWithTemplate(synthesized, fn);
    expect(typeof module.handler).toBe('function');
  });
});

describe('a function fails at cold start, naming the variable, when the stack forgot a setting', () => {
  const synthesized = synthesizeForTests();
  const functions = functionsOf(synthesized);
  const byEntry = (entry: string) => {
    const fn = functions.find((candidate) => candidate.entry === entry);
    if (!fn) throw new Error(`No function for ${entry}`);
    return fn;
  };
  const startsWithout = (fn: ProjectFunction, variable: string) => {
    const { [variable]: removed, ...rest } = templateEnvironment(synthesized, fn);
    expect(removed, `${fn.entry} is given ${variable}`).toBeDefined();
    return coldStart(fn.entry, { ...rest, ...runtimeEnvironment(synthesized, fn) });
  };

  it('a binding: GET /jobs/{job_id} without its job contents table', async () => {
    await expect(startsWithout(byEntry('api/get-job.ts'), TABLE.jobContents)).rejects.toThrow(
      TABLE.jobContents,
    );
  });

  it.each([
    'EMAIL_TRANSPORT',
    'SES_FROM_ADDRESS',
    'MAX_RENDERED_EMAIL_BYTES',
    'DEFAULT_SUBJECT',
    'STORE_RENDERED_EMAILS',
    TABLE.renderedEmails,
  ])('the consumer without %s', async (variable) => {
    await expect(startsWithout(byEntry(CONSUMER_ENTRY), variable)).rejects.toThrow(variable);
  });
});
