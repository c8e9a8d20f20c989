import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { TABLE } from '../../lambdas/core/bindings';
import { createApp } from '../../lib/app';
import { readConfig } from '../../lib/config';
import { consumerScaling } from '../../lib/send-rate';
import { resourcesOfType } from '../../local/template';
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
  topicKeyId,
} from './template-queries';

/**
 * Who may call SES, and what: the consumer sends; /health and GET /sending read the account and the
 * set; the reputation guard (the feedback consumer) and the resume switch the set's sending.
 */
const SES_ACTIONS = {
  [FUNCTION.consumer]: ['ses:SendEmail'],
  [FUNCTION.health]: ['ses:GetAccount', 'ses:GetConfigurationSet'],
  'GET /sending': ['ses:GetAccount', 'ses:GetConfigurationSet'],
  'POST /sending/resume': [
    'ses:GetAccount',
    'ses:GetConfigurationSet',
    'ses:PutConfigurationSetSendingOptions',
  ],
  [FUNCTION.feedbackConsumer]: ['ses:PutConfigurationSetSendingOptions'],
};

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

    it('gives the consumer the configured memory: 192 MB unless told otherwise', () => {
      const [, consumer] = functionByDescription(assertions, FUNCTION.consumer);
      expect(consumer.Properties?.MemorySize).toBe(192);
      const { assertions: larger } = synthesizeForTests({ transport: 'record', consumerMemoryMb: '512' });
      expect(functionByDescription(larger, FUNCTION.consumer)[1].Properties?.MemorySize).toBe(512);
    });
  });
});

/** The configuration set the stack creates: its `Ref` (its name) and its ARN as the policies write it. */
function ownConfigurationSet(assertions: Template) {
  const [id] = Object.keys(assertions.findResources('AWS::SES::ConfigurationSet'));
  expect(id).toBeDefined();
  const arn = sesArn('configuration-set/') as { 'Fn::Join': [string, unknown[]] };
  const parts = arn['Fn::Join'][1];
  return {
    ref: { Ref: id },
    arn: { 'Fn::Join': ['', [...parts.slice(0, -1), ':configuration-set/', { Ref: id }]] },
  };
}

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
    const ownSet = ownConfigurationSet(assertions);

    it("lets the consumer send only as that address, on its identity and its domain's, with the stack's configuration set", () => {
      expect(sortedResources(sendStatement(assertions).Resource)).toEqual(
        sortedResources([...identities(FROM, 'example.org'), ownSet.arn]),
      );
    });

    it("gives the consumer the sender, the transport and the stack's configuration set", () => {
      const environment = environmentOf(assertions, FUNCTION.consumer);
      expect(environment).toMatchObject({
        EMAIL_TRANSPORT: 'ses',
        SES_FROM_ADDRESS: FROM,
        SES_CONFIGURATION_SET: ownSet.ref,
      });
      expect(environment).not.toHaveProperty('SES_REPLY_TO');
    });

    it('grants no other function an ses: action, but the readers of SES state ses:GetAccount (which has no resource to scope to) and GetConfigurationSet on that set, and the switches of the set its sending options', () => {
      expect(sesActionsByFunction(assertions)).toEqual(SES_ACTIONS);
      for (const fn of [FUNCTION.feedbackConsumer, 'POST /sending/resume'])
        expect(
          sesStatements(assertions, fn).find((statement) =>
            actionsOfStatement(statement).includes('ses:PutConfigurationSetSendingOptions'),
          )?.Resource,
        ).toEqual(ownSet.arn);
      const statements = sesStatements(assertions, FUNCTION.health);
      const statementOf = (action: string) =>
        statements.find((statement) => actionsOfStatement(statement).includes(action));
      expect(statementOf('ses:GetAccount')?.Resource).toBe('*');
      expect(statementOf('ses:GetConfigurationSet')?.Resource).toEqual(ownSet.arn);
      expect(environmentOf(assertions, FUNCTION.health)).toMatchObject({
        EMAIL_TRANSPORT: 'ses',
        SES_CONFIGURATION_SET: ownSet.ref,
      });
    });

    it('grants ses: actions to no role but those functions', () => {
      const policiesWithSes = Object.values(assertions.findResources('AWS::IAM::Policy')).filter((policy) =>
        JSON.stringify(policy).includes('"ses:'),
      );
      expect(policiesWithSes).toHaveLength(Object.keys(SES_ACTIONS).length);
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

    expect(sesActionsByFunction(assertions)).toEqual(SES_ACTIONS);
    const readSet = sesStatements(assertions, FUNCTION.health).find((statement) =>
      actionsOfStatement(statement).includes('ses:GetConfigurationSet'),
    );
    expect(readSet).toMatchObject({ Action: 'ses:GetConfigurationSet', Resource: configurationSet });
    expect(environmentOf(assertions, FUNCTION.health)).toMatchObject({ SES_CONFIGURATION_SET: 'marketing' });
  });

  it('allows any identity in the SES sandbox, where SES authorizes against recipients too, still only from fromAddress', () => {
    const { assertions } = synthesizeForTests({ fromAddress: FROM, sesSandbox: 'true' });
    const statement = sendStatement(assertions);
    expect(sortedResources(statement.Resource)).toEqual(
      sortedResources([...identities('*'), ownConfigurationSet(assertions).arn]),
    );
    expect(statement).toMatchObject({
      Action: 'ses:SendEmail',
      Condition: { StringEquals: { 'ses:FromAddress': FROM } },
    });
  });
});

describe("the consumer's pace follows SES's maximum send rate", () => {
  it.each([
    // The sandbox: the least concurrency the event source allows, each environment at half a send a
    // second; a message (ten recipients) a batch, what does not fit in the timeout waits in the queue.
    [1, { maxConcurrency: 2, batchSize: 1, ratePerEnvironment: 0.5 }],
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
      // Nonprofits, jobs, job contents, deliveries, suppressions, usage, the events' outbox, the
      // audit trail and person requests.
      assertions.resourceCountIs('AWS::DynamoDB::Table', 9);
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

describe('SES bounces and complaints', () => {
  const FROM = 'news@example.org';
  const { assertions, template } = synthesizeForTests({ fromAddress: FROM });
  const only = (type: string) => {
    const found = resourcesOfType(template, type);
    expect(found).toHaveLength(1);
    return found[0] as [string, { Properties: Record<string, unknown> }];
  };
  const [feedbackTopicId] = resourcesOfType(template, 'AWS::SNS::Topic').find(([id]) =>
    id.startsWith('SesFeedback'),
  ) ?? [''];

  it('sends every email with a configuration set of its own that publishes bounces and complaints to the feedback topic', () => {
    const [setId, set] = only('AWS::SES::ConfigurationSet');
    expect(set.Properties).toMatchObject({ ReputationOptions: { ReputationMetricsEnabled: true } });
    const [, destination] = only('AWS::SES::ConfigurationSetEventDestination');
    expect(destination.Properties).toMatchObject({
      ConfigurationSetName: { Ref: setId },
      EventDestination: {
        Enabled: true,
        MatchingEventTypes: ['bounce', 'complaint'],
        SnsDestination: { TopicARN: { Ref: feedbackTopicId } },
      },
    });
  });

  it('lets SES, for this account and configuration set only, publish to the topic and use its key', () => {
    const keyId = topicKeyId(template, feedbackTopicId);
    assertions.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'ses.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
          }),
        ]),
      },
    });
    expect(template.Resources[keyId]?.Type).toBe('AWS::KMS::Key');
    assertions.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: feedbackTopicId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'sns:Publish',
            Principal: { Service: 'ses.amazonaws.com' },
            Condition: { StringEquals: Match.objectLike({ 'AWS:SourceArn': Match.anyValue() }) },
          }),
        ]),
      },
    });
  });

  it('delivers the events raw to a queue with a dead-letter queue, consumed in partial batches', () => {
    assertions.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'sqs',
      TopicArn: { Ref: feedbackTopicId },
      RawMessageDelivery: true,
      RedrivePolicy: Match.objectLike({ deadLetterTargetArn: Match.anyValue() }),
    });
    assertions.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { maxReceiveCount: 5, deadLetterTargetArn: Match.anyValue() },
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
    const [consumerId] = functionByDescription(assertions, FUNCTION.feedbackConsumer);
    assertions.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: consumerId },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it("alarms on feedback left unrecorded and on SES's bounce and complaint rates", () => {
    for (const [name, threshold, period] of [
      ['FeedbackDeadLetters', 1, 300],
      ['SesBounceRate', 0.05, 3600],
      ['SesComplaintRate', 0.001, 3600],
    ] as const) {
      assertions.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: `NonprofitMailer-${name}`,
        Threshold: threshold,
        Period: period,
      });
    }
  });

  it("adds its destination to the user's configuration set instead of creating one", () => {
    const custom = synthesizeForTests({ fromAddress: FROM, sesConfigurationSet: 'marketing' });
    custom.assertions.resourceCountIs('AWS::SES::ConfigurationSet', 0);
    custom.assertions.hasResourceProperties('AWS::SES::ConfigurationSetEventDestination', {
      ConfigurationSetName: 'marketing',
    });
  });

  it('is not built with the record transport, which sends nothing', () => {
    const record = synthesizeForTests({ transport: 'record' });
    for (const type of ['AWS::SES::ConfigurationSet', 'AWS::SES::ConfigurationSetEventDestination']) {
      record.assertions.resourceCountIs(type, 0);
    }
    expect(() => functionByDescription(record.assertions, FUNCTION.feedbackConsumer)).toThrow();
  });
});
