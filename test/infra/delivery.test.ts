import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { TABLE } from '../../lambdas/core/bindings';
import { createApp } from '../../lib/app';
import { readConfig } from '../../lib/config';
import { consumerScaling } from '../../lib/send-rate';
import { synthesizeForTests } from '../support/synth';
import {
  actionsOfStatement,
  cdkJsonContext,
  environmentOf,
  eventSourceOf,
  FUNCTION,
  functionByDescription,
  functionDescriptions,
  logicalIdOf,
  type Statement,
  sesArn,
  sortedResources,
  statementsOf,
} from './template-queries';

/** The app as the CLI builds it from cdk.json alone (no test default for the From address), plus `context`. */
const appFromCdkJson = (context: Record<string, unknown> = {}) =>
  createApp({ context: { ...cdkJsonContext(), ...context, 'aws:cdk:bundling-stacks': [] } });

const sesStatements = (assertions: Template, description: string): Statement[] =>
  statementsOf(assertions, description).filter((statement) =>
    actionsOfStatement(statement).some((action) => action.startsWith('ses:')),
  );

/** Every `ses:` action of every function, by function (functions without any left out). */
function sesActionsByFunction(assertions: Template): Record<string, string[]> {
  return Object.fromEntries(
    functionDescriptions(assertions)
      .map((description): [string, string[]] => [
        description,
        sesStatements(assertions, description)
          .flatMap(actionsOfStatement)
          .filter((action) => action.startsWith('ses:'))
          .sort(),
      ])
      .filter(([, actions]) => actions.length > 0),
  );
}

describe('the transport setting', () => {
  it('requires fromAddress with the ses transport, saying how to set it or what to choose instead', () => {
    const context = cdkJsonContext();
    expect(context.fromAddress).toBeUndefined();
    expect(context.transport).toBe('ses');
    expect(() => appFromCdkJson()).toThrow(/fromAddress: Required with the ses transport/);
    expect(() => appFromCdkJson({ transport: 'ses' })).toThrow(/-c fromAddress=.*-c transport=record/);
  });

  it.each([
    [{ fromAddress: 'news' }, /fromAddress: Must be an email address/],
    [{ fromAddress: 'news@example.org', replyTo: 'replies' }, /replyTo: Must be an email address/],
    [{ fromAddress: 'news@example.org', sesConfigurationSet: 'my set' }, /sesConfigurationSet/],
    [{ fromAddress: 'news@example.org', sesSandbox: 'yes' }, /sesSandbox/],
    [{ fromAddress: 'news@example.org', sesMaxSendRate: 0 }, /sesMaxSendRate/],
  ])('rejects %j, naming the setting', (context, message) => {
    expect(() => appFromCdkJson(context)).toThrow(message);
  });

  describe('record: synthesizes without fromAddress, and no function may use SES', () => {
    const { stack } = appFromCdkJson({ transport: 'record' });
    // Synthesizes the app, so cdk-nag runs too.
    const assertions = Template.fromStack(stack);

    it('grants no ses: action to any role, /health included', () => {
      expect(sesActionsByFunction(assertions)).toEqual({});
      expect(JSON.stringify(assertions.toJSON())).not.toContain('"ses:');
    });

    it('tells the consumer and /health the transport, and gives the consumer no SES setting and no pace', () => {
      const consumer = environmentOf(assertions, FUNCTION.consumer);
      expect(consumer.EMAIL_TRANSPORT).toBe('record');
      for (const name of [
        'SES_FROM_ADDRESS',
        'SES_REPLY_TO',
        'SES_CONFIGURATION_SET',
        'SEND_RATE_PER_ENVIRONMENT',
      ]) {
        expect(consumer).not.toHaveProperty(name);
      }
      const health = environmentOf(assertions, FUNCTION.health);
      expect(health.EMAIL_TRANSPORT).toBe('record');
      expect(health).not.toHaveProperty('SES_CONFIGURATION_SET');
    });

    it("scales the consumer by cdk.json's batch size and concurrency alone", () => {
      const [consumerId] = functionByDescription(assertions, FUNCTION.consumer);
      const source = eventSourceOf(assertions, consumerId);
      expect(source.BatchSize).toBe(cdkJsonContext().consumerBatchSize);
      expect(source.ScalingConfig?.MaximumConcurrency).toBe(cdkJsonContext().consumerMaxConcurrency);
    });
  });
});

describe('SES permissions', () => {
  const FROM = 'news@example.org';
  const identities = (...names: string[]) => names.map((name) => sesArn(`identity/${name}`));

  /** The consumer's only SES statement; it must be exactly one, of `ses:SendEmail` alone, from FROM only. */
  function sendStatement(assertions: Template): Statement {
    const statements = sesStatements(assertions, FUNCTION.consumer);
    expect(statements).toHaveLength(1);
    const [statement] = statements as [Statement];
    expect(statement.Effect).toBe('Allow');
    expect(actionsOfStatement(statement)).toEqual(['ses:SendEmail']);
    expect(statement.Condition).toEqual({ StringEquals: { 'ses:FromAddress': FROM } });
    return statement;
  }

  describe(`with fromAddress ${FROM}`, () => {
    const { assertions } = synthesizeForTests({ fromAddress: FROM });

    it("lets the consumer send only as that address, on its identity and its domain's", () => {
      expect(sortedResources(sendStatement(assertions).Resource)).toEqual(
        sortedResources(identities(FROM, 'example.org')),
      );
    });

    it('gives the consumer the sender and the transport, and no configuration set', () => {
      const environment = environmentOf(assertions, FUNCTION.consumer);
      expect(environment).toMatchObject({ EMAIL_TRANSPORT: 'ses', SES_FROM_ADDRESS: FROM });
      expect(environment).not.toHaveProperty('SES_REPLY_TO');
      expect(environment).not.toHaveProperty('SES_CONFIGURATION_SET');
    });

    it('grants no other function an ses: action, but /health ses:GetAccount (which has no resource to scope to)', () => {
      expect(sesActionsByFunction(assertions)).toEqual({
        [FUNCTION.consumer]: ['ses:SendEmail'],
        [FUNCTION.health]: ['ses:GetAccount'],
      });
      const [getAccount] = sesStatements(assertions, FUNCTION.health) as [Statement];
      expect(getAccount.Resource).toBe('*');
      expect(environmentOf(assertions, FUNCTION.health)).toMatchObject({ EMAIL_TRANSPORT: 'ses' });
      expect(environmentOf(assertions, FUNCTION.health)).not.toHaveProperty('SES_CONFIGURATION_SET');
    });

    it('grants ses: actions to no role but those two functions', () => {
      const policiesWithSes = Object.values(assertions.findResources('AWS::IAM::Policy')).filter((policy) =>
        JSON.stringify(policy).includes('"ses:'),
      );
      expect(policiesWithSes).toHaveLength(2);
      for (const role of Object.values(assertions.findResources('AWS::IAM::Role'))) {
        expect(JSON.stringify(role)).not.toContain('"ses:');
      }
    });
  });

  it('adds the configuration set to what the consumer may send with, and lets /health read it', () => {
    const { assertions } = synthesizeForTests({
      fromAddress: FROM,
      sesConfigurationSet: 'marketing',
      replyTo: 'replies@example.org',
    });
    const configurationSet = sesArn('configuration-set/marketing');
    expect(sortedResources(sendStatement(assertions).Resource)).toEqual(
      sortedResources([...identities(FROM, 'example.org'), configurationSet]),
    );
    expect(environmentOf(assertions, FUNCTION.consumer)).toMatchObject({
      SES_FROM_ADDRESS: FROM,
      SES_REPLY_TO: 'replies@example.org',
      SES_CONFIGURATION_SET: 'marketing',
    });

    expect(sesActionsByFunction(assertions)).toEqual({
      [FUNCTION.consumer]: ['ses:SendEmail'],
      [FUNCTION.health]: ['ses:GetAccount', 'ses:GetConfigurationSet'],
    });
    const readSet = sesStatements(assertions, FUNCTION.health).find((statement) =>
      actionsOfStatement(statement).includes('ses:GetConfigurationSet'),
    );
    expect(readSet).toMatchObject({ Action: 'ses:GetConfigurationSet', Resource: configurationSet });
    expect(environmentOf(assertions, FUNCTION.health)).toMatchObject({ SES_CONFIGURATION_SET: 'marketing' });
  });

  it('allows any identity in the SES sandbox, where SES authorizes against recipients too, still only from fromAddress', () => {
    const { assertions } = synthesizeForTests({ fromAddress: FROM, sesSandbox: 'true' });
    const statement = sendStatement(assertions);
    expect(sortedResources(statement.Resource)).toEqual(sortedResources(identities('*')));
    expect(statement).toMatchObject({
      Action: 'ses:SendEmail',
      Condition: { StringEquals: { 'ses:FromAddress': FROM } },
    });
  });
});

describe("the consumer's pace follows SES's maximum send rate", () => {
  it.each([
    // The sandbox: the least concurrency the event source allows, each environment at half a send a second.
    [1, { maxConcurrency: 2, batchSize: 7, ratePerEnvironment: 0.5 }],
    // A new production account.
    [14, { maxConcurrency: 2, batchSize: 10, ratePerEnvironment: 7 }],
    // Capped by cdk.json's consumerMaxConcurrency and consumerBatchSize.
    ['200', { maxConcurrency: 10, batchSize: 10, ratePerEnvironment: 20 }],
  ])('sesMaxSendRate %s', (sesMaxSendRate, expected) => {
    const { stack, assertions } = synthesizeForTests({ sesMaxSendRate });
    const scaling = consumerScaling(readConfig(stack.node));
    expect(scaling).toEqual(expected);

    const [consumerId] = functionByDescription(assertions, FUNCTION.consumer);
    const source = eventSourceOf(assertions, consumerId);
    expect(source.BatchSize).toBe(scaling.batchSize);
    expect(source.ScalingConfig?.MaximumConcurrency).toBe(scaling.maxConcurrency);

    const ratePerEnvironment = Number(environmentOf(assertions, FUNCTION.consumer).SEND_RATE_PER_ENVIRONMENT);
    expect(ratePerEnvironment).toBe(scaling.ratePerEnvironment);
    expect(
      ratePerEnvironment * (source.ScalingConfig?.MaximumConcurrency ?? Number.POSITIVE_INFINITY),
    ).toBeLessThanOrEqual(Number(sesMaxSendRate));
  });
});

describe('rendered emails', () => {
  it('are kept in their own table, keyed by job and recipient, removed by TTL on expires_at', () => {
    const { assertions } = synthesizeForTests();
    const tableId = logicalIdOf(assertions, 'AWS::DynamoDB::Table', 'DataRenderedEmails');
    expect(assertions.findResources('AWS::DynamoDB::Table')[tableId]?.Properties).toMatchObject({
      KeySchema: [
        { AttributeName: 'job_id', KeyType: 'HASH' },
        { AttributeName: 'recipient', KeyType: 'RANGE' },
      ],
      TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
    });
    expect(environmentOf(assertions, FUNCTION.consumer)).toMatchObject({
      [TABLE.renderedEmails]: { Ref: tableId },
      STORE_RENDERED_EMAILS: 'true',
      RENDERED_EMAIL_RETENTION_DAYS: String(cdkJsonContext().renderedEmailRetentionDays),
      MAX_RENDERED_EMAIL_BYTES: String(cdkJsonContext().maxRenderedEmailBytes),
    });
    expect(environmentOf(assertions, FUNCTION.listJobEmails)).toMatchObject({
      [TABLE.renderedEmails]: { Ref: tableId },
      STORE_RENDERED_EMAILS: 'true',
    });
  });

  it('are kept for the configured number of days', () => {
    const { assertions } = synthesizeForTests({ renderedEmailRetentionDays: '7' });
    expect(environmentOf(assertions, FUNCTION.consumer).RENDERED_EMAIL_RETENTION_DAYS).toBe('7');
  });

  it.each([false, 'false'])(
    'are not kept with storeRenderedEmails %j: no table, no binding, and a size limit past one item',
    (storeRenderedEmails) => {
      const { assertions, template } = synthesizeForTests({
        storeRenderedEmails,
        maxRenderedEmailBytes: 500_000,
      });
      expect(JSON.stringify(template)).not.toContain('RenderedEmails');
      assertions.resourceCountIs('AWS::DynamoDB::Table', 5);
      for (const description of [FUNCTION.consumer, FUNCTION.listJobEmails]) {
        const environment = environmentOf(assertions, description);
        expect(environment.STORE_RENDERED_EMAILS).toBe('false');
        expect(environment).not.toHaveProperty(TABLE.renderedEmails);
        expect(environment).not.toHaveProperty('RENDERED_EMAIL_RETENTION_DAYS');
      }
      expect(environmentOf(assertions, FUNCTION.consumer).MAX_RENDERED_EMAIL_BYTES).toBe('500000');
    },
  );

  it('refuse a size limit past what one DynamoDB item holds while they are kept, saying why', () => {
    expect(() => synthesizeForTests({ maxRenderedEmailBytes: 500_000 })).toThrow(
      /maxRenderedEmailBytes: At most \d+ while storeRenderedEmails is on/,
    );
  });
});

describe("a consumer's claim on a recipient", () => {
  it.each([undefined, 60, 900])(
    'outlasts the consumer and lapses before its message is received again (consumerTimeoutSeconds %s)',
    (consumerTimeoutSeconds) => {
      const { assertions } = synthesizeForTests(
        consumerTimeoutSeconds === undefined ? {} : { consumerTimeoutSeconds },
      );
      const queues = assertions.findResources('AWS::SQS::Queue');
      for (const [description, queue] of [
        [FUNCTION.consumer, 'QueueEmails'],
        [FUNCTION.deadLetterConsumer, 'QueueDeadLetters'],
      ] as const) {
        const [, fn] = functionByDescription(assertions, description);
        const lease = Number(fn.Properties.Environment.Variables.CLAIM_LEASE_SECONDS);
        const visibilityTimeout = queues[logicalIdOf(assertions, 'AWS::SQS::Queue', queue)]?.Properties
          ?.VisibilityTimeout as number;
        expect(lease).toBeGreaterThan(fn.Properties.Timeout);
        expect(lease).toBeLessThan(visibilityTimeout);
      }
    },
  );
});
