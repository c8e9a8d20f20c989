import { readFileSync } from 'node:fs';
import { Validations } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { METRIC, METRICS_NAMESPACE, SERVICE_NAME } from '../../lambdas/core/observability/metric-names';
import { createApp } from '../../lib/app';
import { configSchema } from '../../lib/config';
import { readApiModel } from '../../local/api-model';
import { IntrinsicResolver, resourcesOfType } from '../../local/template';
import { readRateRules } from '../../local/waf';
import { synthesizeForTests } from '../support/synth';
import * as queries from './template-queries';
import { baseId, cdkJsonContext, FUNCTION, logicalIdOf } from './template-queries';

const { assertions, template, stack } = synthesizeForTests();

/** The routes the README documents: the contract the template and the local gateway must both keep. */
const DOCUMENTED_ROUTES = [
  'DELETE /nonprofits/{email}',
  'DELETE /suppressions/{email}',
  'GET /audit',
  'GET /health',
  'GET /health/details',
  'GET /jobs',
  'GET /jobs/{job_id}',
  'GET /jobs/{job_id}/emails',
  'GET /jobs/{job_id}/status',
  'GET /nonprofits',
  'GET /nonprofits/{email}',
  'GET /openapi.json',
  'GET /people/requests/{request_id}',
  'GET /sending',
  'GET /suppressions',
  'GET /suppressions/{email}',
  'GET /unsubscribe',
  'GET /usage',
  'POST /jobs/{job_id}/cancel',
  'POST /jobs/{job_id}/retry',
  'POST /nonprofits',
  'POST /nonprofits/import',
  'POST /people/{email}/erasure',
  'POST /people/{email}/export',
  'POST /send-email',
  'POST /send-email/preview',
  'POST /sending/resume',
  'POST /unsubscribe',
  'PUT /nonprofits/{email}',
  'PUT /suppressions/{email}',
];
/**
 * One function per route (both job reads share one, as do both unsubscribe methods and both health
 * routes), plus the consumer, the dead-letter consumer, the outcome counter, the sweeper, the
 * consumer of SES feedback, the API keys' authorizer, the events' publisher, the starter of
 * scheduled jobs, the worker of person requests, the custom resource that sets API Gateway's
 * account logging role, and the link secret's rotation function.
 */
const FUNCTION_COUNT = DOCUMENTED_ROUTES.length - 3 + 11;

const functionByDescription = (description: string) => queries.functionByDescription(assertions, description);
const actionsOf = (description: string, prefix?: string) =>
  queries.actionsOf(assertions, description, prefix);
const dataGrantsOf = (description: string) => queries.dataGrantsOf(assertions, description);
/** The alarm topic (the stack's other topic carries SES feedback). */
const alarmTopicId = () => {
  const [id] = resourcesOfType(template, 'AWS::SNS::Topic').find(([logicalId]) =>
    logicalId.startsWith('MonitoringAlarms'),
  ) ?? [''];
  return id;
};

describe("personal data under the owner's key", () => {
  const keyId = () => logicalIdOf(assertions, 'AWS::KMS::Key', 'DataKey');

  it('makes one customer managed key, rotated yearly and kept with the tables it opens', () => {
    const key = template.Resources?.[keyId()];
    expect(key).toMatchObject({
      DeletionPolicy: 'Retain',
      Properties: { EnableKeyRotation: true },
    });
  });

  it('encrypts every table with it, and protects each table the stack keeps from deletion', () => {
    const tables = resourcesOfType(template, 'AWS::DynamoDB::Table');
    expect(tables.length).toBeGreaterThanOrEqual(10);
    for (const [id, table] of tables) {
      expect(table.Properties?.SSESpecification, id).toEqual({
        SSEEnabled: true,
        SSEType: 'KMS',
        KMSMasterKeyId: { 'Fn::GetAtt': [keyId(), 'Arn'] },
      });
      // The outbox (events on their way out, kept a day) goes with the stack; the rest stay.
      const { DeletionPolicy } = table as { DeletionPolicy?: string };
      expect(table.Properties?.DeletionProtectionEnabled, id).toBe(DeletionPolicy === 'Retain');
    }
    expect(tables.filter(([, table]) => table.Properties?.DeletionProtectionEnabled)).toHaveLength(
      tables.length - 1,
    );
  });

  it('encrypts every queue with it (each carries addresses), a data key reused for an hour', () => {
    const queues = resourcesOfType(template, 'AWS::SQS::Queue');
    expect(queues).toHaveLength(6);
    for (const [id, queue] of queues) {
      expect(queue.Properties, id).toMatchObject({
        KmsMasterKeyId: { 'Fn::GetAtt': [keyId(), 'Arn'] },
        KmsDataKeyReusePeriodSeconds: 3600,
      });
    }
  });

  it('lets a function use the key as it uses the data: reads decrypt, writes and sends encrypt, by named actions', () => {
    const keyActions = (description: string) => actionsOf(description, 'kms:');
    expect(keyActions(FUNCTION.health)).toEqual(['kms:Decrypt', 'kms:DescribeKey']);
    expect(keyActions('POST /nonprofits')).toEqual([
      'kms:Decrypt',
      'kms:DescribeKey',
      'kms:Encrypt',
      'kms:GenerateDataKey',
    ]);
    // The consumer reads its queue (the event source decrypts) and writes the ledger.
    expect(keyActions(FUNCTION.consumer)).toEqual(
      expect.arrayContaining(['kms:Decrypt', 'kms:GenerateDataKey']),
    );
    // No role's policy holds a wildcard action on a key (the key policy's own kms:* is the account's).
    const policies = resourcesOfType(template, 'AWS::IAM::Policy').map(([, policy]) =>
      JSON.stringify(policy),
    );
    for (const policy of policies) expect(policy).not.toMatch(/"kms:[A-Za-z]*\*"/);
  });

  it('takes a key of your own instead (dataKeyArn), making none', () => {
    const arn = 'arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555';
    const own = synthesizeForTests({ dataKeyArn: arn });
    own.assertions.resourceCountIs('AWS::KMS::Key', 2); // the two SNS topics' keys, not the data key
    own.assertions.hasResourceProperties('AWS::DynamoDB::Table', {
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: arn },
    });
    expect(() => synthesizeForTests({ dataKeyArn: 'alias/mine' })).toThrow(/dataKeyArn/);
  });
});

describe('data', () => {
  it('keys nonprofits by email, with a domain index sorted by email, on demand, with PITR', () => {
    assertions.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'email', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      GlobalSecondaryIndexes: [
        {
          IndexName: 'by-domain',
          KeySchema: [
            { AttributeName: 'domain', KeyType: 'HASH' },
            { AttributeName: 'email', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    });
  });

  it("counts each key's recipients per UTC day, expiring old days, with the limit from context", () => {
    assertions.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'api_key_id', KeyType: 'HASH' },
        { AttributeName: 'day', KeyType: 'RANGE' },
      ],
      TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
    });
    const small = synthesizeForTests({ recipientQuotaPerDay: '250' }).assertions;
    for (const description of [
      'POST /send-email',
      FUNCTION.consumer,
      FUNCTION.deadLetterConsumer,
      'GET /usage',
    ])
      expect(queries.environmentOf(small, description).RECIPIENT_QUOTA_PER_DAY).toBe('250');
    expect(queries.environmentOf(assertions, 'GET /usage')).toMatchObject({
      RECIPIENT_QUOTA_PER_DAY: '100000',
      USAGE_PLAN_RATE_LIMIT: '50',
      USAGE_PLAN_BURST_LIMIT: '100',
      USAGE_PLAN_QUOTA_PER_DAY: '100000',
    });
  });

  it('keeps the registry when the stack is deleted', () => {
    assertions.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });
});

describe('functions', () => {
  it('run Node 24 on arm64 with tracing, JSON logs and source maps', () => {
    const functions = assertions.findResources('AWS::Lambda::Function');
    expect(Object.keys(functions).length).toBe(FUNCTION_COUNT);
    for (const fn of Object.values(functions)) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: expect.any(String) } },
        Environment: { Variables: { NODE_OPTIONS: '--enable-source-maps' } },
      });
    }
  });

  it('write to log groups with a retention', () => {
    const groups = Object.values(assertions.findResources('AWS::Logs::LogGroup'));
    expect(groups.length).toBeGreaterThan(FUNCTION_COUNT);
    for (const group of groups) expect(group.Properties?.RetentionInDays).toBeGreaterThan(0);
  });

  const NONPROFITS = 'DataNonprofits';
  const JOBS = 'DataJobs';
  const CONTENTS = 'DataJobContents';
  const DELIVERIES = 'DataDeliveries';
  const RENDERED = 'DataRenderedEmails';
  const SUPPRESSIONS = 'DataSuppressions';
  const USAGE = 'DataUsage';
  const EMAILS = 'QueueEmails';
  const DEAD_LETTERS = 'QueueDeadLetters';
  const FEEDBACK = 'SesFeedbackEvents';
  /** Only puts, each in the transaction of the fact it tells (core/events). */
  const OUTBOX = 'DataOutbox';
  const TELLS = ['dynamodb:PutItem'];
  /** Only puts, each in the transaction of the change it records (core/audit): nothing may change or remove one. */
  const AUDIT = 'DataAudit';
  const RECORDS = ['dynamodb:PutItem'];
  /** Where an erased address comes back in: its key's record read, the address's own put (read first). */
  const REMEMBERS = ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:PutItem'];
  const PEOPLE = 'DataPersonRequests';
  const PEOPLE_STEPS = 'PeopleSteps';
  const EVENT_SOURCE = [
    'sqs:ChangeMessageVisibility',
    'sqs:DeleteMessage',
    'sqs:GetQueueAttributes',
    'sqs:GetQueueUrl',
    'sqs:ReceiveMessage',
  ];
  it.each<[string, Record<string, string[]>]>([
    // An address erased before is suppressed again first: its key's record read, its own written.
    ['POST /nonprofits', { [NONPROFITS]: ['dynamodb:PutItem'], [SUPPRESSIONS]: REMEMBERS, [AUDIT]: RECORDS }],
    [
      'GET /nonprofits',
      {
        [NONPROFITS]: ['dynamodb:Scan'],
        [`${NONPROFITS}/index/by-domain`]: ['dynamodb:Query'],
      },
    ],
    // A conditional put per row; with on_conflict=update, a conditional update of a changed one.
    // The import is recorded once, with its counts.
    [
      'POST /nonprofits/import',
      {
        [NONPROFITS]: ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
        [SUPPRESSIONS]: REMEMBERS,
        [AUDIT]: RECORDS,
      },
    ],
    ['GET /nonprofits/{email}', { [NONPROFITS]: ['dynamodb:GetItem'] }],
    // The request and its hold in one transaction, the hold read when taken, both deleted when the
    // start cannot be queued; the start queued.
    [
      'POST /people/{email}/export',
      {
        [PEOPLE]: [
          'dynamodb:ConditionCheckItem',
          'dynamodb:DeleteItem',
          'dynamodb:GetItem',
          'dynamodb:PutItem',
        ],
        [PEOPLE_STEPS]: ['sqs:SendMessage'],
      },
    ],
    ['GET /people/requests/{request_id}', { [PEOPLE]: ['dynamodb:GetItem', 'dynamodb:Query'] }],
    // An export reads: the ledger by Scan, a job's subject, the registry entry and the suppression
    // record. An erasure walks every table that can name a person.
    [
      "Walks the ledger for a person's data request, a segment at a time",
      {
        [PEOPLE]: [
          'dynamodb:BatchWriteItem',
          'dynamodb:DeleteItem',
          'dynamodb:GetItem',
          'dynamodb:Query',
          'dynamodb:Scan',
          'dynamodb:UpdateItem',
        ],
        // An erasure moves the person's entries to their key, and rewrites those naming them.
        [DELIVERIES]: [
          'dynamodb:DeleteItem',
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:Scan',
          'dynamodb:UpdateItem',
        ],
        [CONTENTS]: ['dynamodb:GetItem', 'dynamodb:Scan', 'dynamodb:UpdateItem'],
        [NONPROFITS]: ['dynamodb:GetItem'],
        [SUPPRESSIONS]: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:Scan', 'dynamodb:UpdateItem'],
        // The jobs an erasure waits out: those running at its start, those scheduled then that ran.
        [JOBS]: ['dynamodb:GetItem'],
        [`${JOBS}/index/active`]: ['dynamodb:Query'],
        [`${JOBS}/index/scheduled`]: ['dynamodb:Query'],
        [OUTBOX]: ['dynamodb:DeleteItem', 'dynamodb:Scan'],
        // The person's rendered emails removed, their name and postal address taken out of snapshots.
        [RENDERED]: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:Scan', 'dynamodb:UpdateItem'],
        // Its completion recorded; records naming the person rewritten to the key (that attribute
        // alone: the audit test below holds the grant's condition).
        [AUDIT]: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Scan', 'dynamodb:UpdateItem'],
        [PEOPLE_STEPS]: [...EVENT_SOURCE, 'sqs:SendMessage'].sort(),
      },
    ],
    [
      'POST /people/{email}/erasure',
      {
        [PEOPLE]: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem'],
        // Suppressed under the address and its key, the entry deleted, recorded: with the request.
        [SUPPRESSIONS]: ['dynamodb:PutItem'],
        [NONPROFITS]: ['dynamodb:DeleteItem'],
        [AUDIT]: RECORDS,
        [PEOPLE_STEPS]: ['sqs:SendMessage'],
      },
    ],
    // Read first: the audit record names the fields the update changed.
    [
      'PUT /nonprofits/{email}',
      { [NONPROFITS]: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], [AUDIT]: RECORDS },
    ],
    ['DELETE /nonprofits/{email}', { [NONPROFITS]: ['dynamodb:DeleteItem'], [AUDIT]: RECORDS }],
    [
      'GET /suppressions',
      { [SUPPRESSIONS]: ['dynamodb:Scan'], [`${SUPPRESSIONS}/index/by-reason`]: ['dynamodb:Query'] },
    ],
    ['GET /suppressions/{email}', { [SUPPRESSIONS]: ['dynamodb:GetItem'] }],
    // Read first, written only over the record read: the audit record names what it replaced.
    [
      'PUT /suppressions/{email}',
      { [SUPPRESSIONS]: ['dynamodb:GetItem', 'dynamodb:PutItem'], [AUDIT]: RECORDS },
    ],
    [
      'DELETE /suppressions/{email}',
      { [SUPPRESSIONS]: ['dynamodb:DeleteItem', 'dynamodb:GetItem'], [AUDIT]: RECORDS },
    ],
    [
      'GET /audit',
      {
        [AUDIT]: ['dynamodb:Query'],
        [`${AUDIT}/index/by-email`]: ['dynamodb:Query'],
        [`${AUDIT}/index/by-action`]: ['dynamodb:Query'],
      },
    ],
    // The link's job names the API key recorded as the suppression's cause; the email's ledger entry
    // notes the unsubscribe (its partition from the job's content), and the job counts it.
    [
      'GET|POST /unsubscribe',
      {
        [SUPPRESSIONS]: ['dynamodb:GetItem', 'dynamodb:PutItem'],
        [JOBS]: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        [CONTENTS]: ['dynamodb:GetItem'],
        [DELIVERIES]: ['dynamodb:UpdateItem'],
        [OUTBOX]: TELLS,
        [AUDIT]: RECORDS,
      },
    ],
    [
      'POST /send-email',
      {
        [NONPROFITS]: ['dynamodb:BatchGetItem'],
        [JOBS]: ['dynamodb:GetItem', 'dynamodb:PutItem'],
        [CONTENTS]: ['dynamodb:PutItem'],
        [OUTBOX]: TELLS,
        [EMAILS]: ['sqs:SendMessage'],
        // The recipient quota: one conditional update; a job over the whole limit reads what remains.
        [USAGE]: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        // A cc address erased before is found by its key's record, and the key stored in its place.
        [SUPPRESSIONS]: ['dynamodb:BatchGetItem'],
      },
    ],
    ['GET /usage', { [USAGE]: ['dynamodb:GetItem'] }],
    // Reads the registry only: a preview writes and enqueues nothing.
    ['POST /send-email/preview', { [NONPROFITS]: ['dynamodb:BatchGetItem'] }],
    ['GET /jobs', { [`${JOBS}/index/by-api-key`]: ['dynamodb:Query'] }],
    ['GET /jobs/{job_id}', { [JOBS]: ['dynamodb:GetItem'], [CONTENTS]: ['dynamodb:GetItem'] }],
    // The cancel is one conditional update of the job; a scheduled job's ends it (told), and gives
    // back to the key's quota, on the day its content names, what it counted.
    [
      'POST /jobs/{job_id}/cancel',
      {
        [JOBS]: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        [CONTENTS]: ['dynamodb:GetItem'],
        [USAGE]: ['dynamodb:UpdateItem'],
        [OUTBOX]: TELLS,
      },
    ],
    [
      'Starts scheduled jobs at their send_at: enqueues their recipients',
      {
        // The waiting jobs by time (the sparse index), each started by a conditional update.
        [JOBS]: ['dynamodb:UpdateItem'],
        [`${JOBS}/index/scheduled`]: ['dynamodb:Query'],
        [CONTENTS]: ['dynamodb:Query'],
        [EMAILS]: ['sqs:SendMessage'],
      },
    ],
    // Failures read, taken back to queued with the job's counters in transactions, then enqueued.
    [
      'POST /jobs/{job_id}/retry',
      {
        [JOBS]: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        [DELIVERIES]: ['dynamodb:Query', 'dynamodb:UpdateItem'],
        // How many partition keys the job's deliveries are spread over.
        [CONTENTS]: ['dynamodb:GetItem'],
        [SUPPRESSIONS]: ['dynamodb:BatchGetItem'],
        [EMAILS]: ['sqs:SendMessage'],
      },
    ],
    [
      'GET /jobs/{job_id}/emails',
      {
        [JOBS]: ['dynamodb:GetItem'],
        [CONTENTS]: ['dynamodb:GetItem', 'dynamodb:Query'],
        [DELIVERIES]: ['dynamodb:BatchGetItem'],
        [RENDERED]: ['dynamodb:BatchGetItem'],
      },
    ],
    [
      FUNCTION.consumer,
      {
        [NONPROFITS]: ['dynamodb:BatchGetItem'],
        // Only whether the job was cancelled: its counters follow from the deliveries' stream.
        [JOBS]: ['dynamodb:GetItem'],
        [CONTENTS]: ['dynamodb:GetItem'],
        // Claims (a chunk's, or a recipient's) are conditional updates, given back by lapsing their
        // lease; each outcome is one update; a chunk taken over is read first.
        [DELIVERIES]: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'],
        // One snapshot a batch: what its emails were rendered from.
        [RENDERED]: ['dynamodb:PutItem'],
        // Read for every batch: no email to a suppressed address.
        [SUPPRESSIONS]: ['dynamodb:BatchGetItem'],
        // Cancelled recipients go back to their key's recipient quota.
        [USAGE]: ['dynamodb:UpdateItem'],
        // Emails that must wait go back to the queue as new, delayed messages.
        [EMAILS]: [...EVENT_SOURCE, 'sqs:SendMessage'],
      },
    ],
    [
      FUNCTION.deadLetterConsumer,
      {
        [JOBS]: ['dynamodb:GetItem'],
        [CONTENTS]: ['dynamodb:GetItem'],
        // A claim, then the outcome under it: both updates (a chunk's recipients read first).
        [DELIVERIES]: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'],
        // Dead letters of a cancelled job go back to its key's recipient quota.
        [USAGE]: ['dynamodb:UpdateItem'],
        [DEAD_LETTERS]: EVENT_SOURCE,
      },
    ],
    [
      FUNCTION.feedbackConsumer,
      {
        // A suppression is a conditional put; a refused one reads the record kept.
        [SUPPRESSIONS]: ['dynamodb:GetItem', 'dynamodb:PutItem'],
        // The job's owner for the suppression, then its counter; the reputation window and the guard's record.
        [JOBS]: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem'],
        [DELIVERIES]: ['dynamodb:UpdateItem'],
        // How many partition keys the job's deliveries are spread over.
        [CONTENTS]: ['dynamodb:GetItem'],
        [OUTBOX]: TELLS,
        // The suppressions it adds and the guard's pauses.
        [AUDIT]: RECORDS,
        [FEEDBACK]: EVENT_SOURCE,
      },
    ],
    [
      FUNCTION.counter,
      {
        // One transaction per job of a stream batch (the batch's mark and the counters); an ended job read for its duration.
        [JOBS]: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        [OUTBOX]: TELLS,
        // The event source reads the deliveries' stream with the function's role.
        [`${DELIVERIES}/stream`]: [
          'dynamodb:DescribeStream',
          'dynamodb:GetRecords',
          'dynamodb:GetShardIterator',
        ],
        '*': ['dynamodb:ListStreams'],
      },
    ],
    [
      'Re-enqueues the recipients of running jobs whose messages can no longer be queued',
      {
        [JOBS]: ['dynamodb:UpdateItem'],
        [`${JOBS}/index/active`]: ['dynamodb:Query'],
        // The recipient lists, and how many partition keys the deliveries are spread over.
        [CONTENTS]: ['dynamodb:GetItem', 'dynamodb:Query'],
        [DELIVERIES]: ['dynamodb:Query'],
        [OUTBOX]: TELLS,
        [EMAILS]: ['sqs:GetQueueAttributes', 'sqs:SendMessage'],
        [DEAD_LETTERS]: ['sqs:GetQueueAttributes'],
      },
    ],
    [
      FUNCTION.health,
      {
        [NONPROFITS]: ['dynamodb:GetItem'],
        // The reputation guard's record: why sending is off.
        [JOBS]: ['dynamodb:GetItem'],
        [EMAILS]: ['sqs:GetQueueAttributes'],
        [DEAD_LETTERS]: ['sqs:GetQueueAttributes'],
      },
    ],
    // The reputation window (BatchGetItem) and the guard's record; the resume writes it.
    ['GET /sending', { [JOBS]: ['dynamodb:BatchGetItem', 'dynamodb:GetItem'] }],
    [
      'POST /sending/resume',
      {
        [JOBS]: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem'],
        [OUTBOX]: TELLS,
        [AUDIT]: RECORDS,
      },
    ],
    [
      FUNCTION.publisher,
      {
        // Only the outbox's stream: every event holds all it tells.
        [`${OUTBOX}/stream`]: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'],
        '*': ['dynamodb:ListStreams'],
      },
    ],
  ])('%s may call exactly these actions on each table, index and queue', (description, expected) => {
    expect(dataGrantsOf(description)).toEqual(expected);
  });

  it('lets no function change or remove an audit record but an erasure rewriting its address: puts of new records and reads', () => {
    const auditArn = { 'Fn::GetAtt': [logicalIdOf(assertions, 'AWS::DynamoDB::Table', 'DataAudit'), 'Arn'] };
    const touching = Object.values(assertions.findResources('AWS::IAM::Policy')).flatMap((policy) =>
      (
        policy.Properties.PolicyDocument.Statement as {
          Action: string | string[];
          Resource: unknown;
          Condition?: unknown;
        }[]
      ).filter((statement) => JSON.stringify(statement.Resource).includes(JSON.stringify(auditArn))),
    );
    const actions = new Set(touching.flatMap((statement) => [statement.Action].flat()));
    expect(touching.length).toBeGreaterThan(5);
    expect([...actions].sort()).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:Scan',
      'dynamodb:UpdateItem',
    ]);
    // The one update: IAM allows it the record's key and the attributes that may name a person
    // (`email`, `reason`, `details`) only, and no values back.
    const updates = touching.filter((statement) => [statement.Action].flat().includes('dynamodb:UpdateItem'));
    expect(updates).toEqual([
      {
        Effect: 'Allow',
        Action: 'dynamodb:UpdateItem',
        Resource: auditArn,
        Condition: {
          'ForAllValues:StringEquals': {
            'dynamodb:Attributes': ['trail', 'entry', 'email', 'reason', 'details'],
          },
          StringEqualsIfExists: { 'dynamodb:ReturnValues': ['NONE'] },
        },
      },
    ]);
    expect(actions.has('dynamodb:DeleteItem')).toBe(false);
    // And the table keeps its records for their retention: TTL on, kept with the stack's deletion.
    assertions.hasResource('AWS::DynamoDB::Table', {
      Properties: Match.objectLike({
        KeySchema: [
          { AttributeName: 'trail', KeyType: 'HASH' },
          { AttributeName: 'entry', KeyType: 'RANGE' },
        ],
        TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
      }),
      DeletionPolicy: 'Retain',
    });
  });

  it('grants the domain index only to the function that queries it', () => {
    const indexResource = {
      'Fn::Join': ['', [{ 'Fn::GetAtt': [Match.anyValue(), 'Arn'] }, '/index/by-domain']],
    };
    const withIndex = assertions.findResources('AWS::IAM::Policy', {
      Properties: {
        PolicyDocument: {
          Statement: Match.arrayWith([Match.objectLike({ Resource: indexResource })]),
        },
      },
    });
    expect(Object.keys(withIndex)).toHaveLength(1);
    expect(JSON.stringify(template)).not.toContain('/index/*');
  });

  it('use no managed policy', () => {
    const roles = Object.values(
      assertions.findResources('AWS::IAM::Role', {
        Properties: {
          AssumeRolePolicyDocument: { Statement: [{ Principal: { Service: 'lambda.amazonaws.com' } }] },
        },
      }),
    );
    expect(roles.length).toBe(FUNCTION_COUNT);
    for (const role of roles) expect(role.Properties?.ManagedPolicyArns).toBeUndefined();
  });
});

describe('API', () => {
  it('requires an API key on every method but GET /health, the unsubscribe link and the contract, whose callers hold none', () => {
    const model = readApiModel(template, new IntrinsicResolver(template));
    const keyless = model.routes
      .filter((route) => !route.apiKeyRequired)
      .map((route) => `${route.method} ${route.resourcePath}`)
      .sort();
    expect(keyless).toEqual(['GET /health', 'GET /openapi.json', 'GET /unsubscribe', 'POST /unsubscribe']);
    expect(model.routes.filter((route) => route.apiKeyRequired)).toHaveLength(DOCUMENTED_ROUTES.length - 4);
  });

  it("sets the usage plan's rate, burst and daily quota from cdk.json", () => {
    assertions.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      Throttle: { RateLimit: 50, BurstLimit: 100 },
      Quota: { Limit: 100000, Period: 'DAY' },
    });
  });

  it('takes the limits from context, so they are configuration', () => {
    const custom = synthesizeForTests({
      usagePlanRateLimit: '7',
      usagePlanBurstLimit: 9,
      usagePlanQuotaPerDay: 11,
    });
    custom.assertions.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      Throttle: { RateLimit: 7, BurstLimit: 9 },
      Quota: { Limit: 11, Period: 'DAY' },
    });
  });

  it('rejects invalid limits with the name of the setting', () => {
    expect(() => synthesizeForTests({ usagePlanBurstLimit: 'many' })).toThrow(/usagePlanBurstLimit/);
  });

  it('attaches the declared API keys to the plan (the local runtime declares two) and outputs the first one’s id and the URL', () => {
    assertions.resourceCountIs('AWS::ApiGateway::ApiKey', 2);
    assertions.resourceCountIs('AWS::ApiGateway::UsagePlanKey', 2);
    const outputs = assertions.toJSON().Outputs as Record<string, unknown>;
    expect(Object.keys(outputs)).toEqual(expect.arrayContaining(['ApiUrl', 'ApiKeyId']));
  });

  it("leaves the account's API Gateway logging role alone: set only if the account has none, never deleted", () => {
    // No AWS::ApiGateway::Account: CloudFormation would overwrite the account's setting with it.
    assertions.resourceCountIs('AWS::ApiGateway::Account', 0);
    const settings = resourcesOfType(template, 'Custom::ApiGatewayAccountLogRole');
    const roles = resourcesOfType(template, 'AWS::IAM::Role').filter(([, resource]) =>
      JSON.stringify(resource.Properties?.AssumeRolePolicyDocument).includes('apigateway.amazonaws.com'),
    );
    expect(settings).toHaveLength(1);
    expect(roles).toHaveLength(1);
    const [settingId, setting] = settings[0] ?? [];
    const [roleId, role] = roles[0] ?? [];
    // The setting may still name the role once the stack is gone: it stays.
    expect(role).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    expect(setting?.Properties).toMatchObject({ RoleArn: { 'Fn::GetAtt': [roleId, 'Arn'] } });
    // The stage (with its logs) waits for the setting.
    const [, stage] = resourcesOfType(template, 'AWS::ApiGateway::Stage')[0] ?? [];
    expect(stage?.DependsOn).toEqual(expect.arrayContaining([settingId]));
    // Its function may read and patch the account setting and pass that role, nothing more.
    const setter = "Sets API Gateway's account logging role when the account has none";
    expect(actionsOf(setter, 'apigateway:')).toEqual(['apigateway:GET', 'apigateway:PATCH']);
    // PassRole on its own role; GetRole (any role) to learn whether the one the account names still exists.
    expect(actionsOf(setter, 'iam:')).toEqual(['iam:GetRole', 'iam:PassRole']);
    expect(actionsOf(setter, 'dynamodb:')).toEqual([]);
  });

  it('disables the execute-api endpoint behind a custom domain (publicApiUrl), so nothing goes around it', () => {
    assertions.hasResourceProperties('AWS::ApiGateway::RestApi', { DisableExecuteApiEndpoint: false });
    const custom = synthesizeForTests({ publicApiUrl: 'https://mail-api.example.org/v1' });
    custom.assertions.hasResourceProperties('AWS::ApiGateway::RestApi', { DisableExecuteApiEndpoint: true });
    expect(custom.assertions.toJSON().Outputs.ApiUrl.Value).toBe('https://mail-api.example.org/v1');
  });

  it('puts a web ACL on the stage: AWS managed groups, per-address rate rules (a tight one on /unsubscribe), redacted logs', () => {
    const acls = resourcesOfType(template, 'AWS::WAFv2::WebACL');
    expect(acls).toHaveLength(1);
    const [aclId, acl] = acls[0] ?? [];
    const rules = (acl?.Properties?.Rules ?? []) as {
      Name: string;
      Statement: Record<string, Record<string, unknown>>;
      Action?: { Block?: { CustomResponse?: { ResponseCode: number } } };
    }[];
    const groups = rules.flatMap((rule) => {
      const group = rule.Statement.ManagedRuleGroupStatement;
      return group ? [group.Name] : [];
    });
    expect(groups).toEqual([
      'AWSManagedRulesAmazonIpReputationList',
      'AWSManagedRulesKnownBadInputsRuleSet',
      'AWSManagedRulesCommonRuleSet',
    ]);
    // The core rule set's body-size and cross-site scripting rules count: a 10,000-recipient job or
    // an HTML template is what this API takes.
    const common = rules.find((rule) => rule.Name === 'CoreRuleSet')?.Statement.ManagedRuleGroupStatement;
    expect(common?.RuleActionOverrides).toEqual([
      { Name: 'SizeRestrictions_BODY', ActionToUse: { Count: {} } },
      { Name: 'CrossSiteScripting_BODY', ActionToUse: { Count: {} } },
    ]);
    const rate = (name: string) => rules.find((rule) => rule.Name === name);
    expect(rate('ApiPerIp')?.Statement.RateBasedStatement).toEqual({
      Limit: 6000,
      EvaluationWindowSec: 60,
      AggregateKeyType: 'IP',
    });
    expect(rate('UnsubscribePerIp')?.Statement.RateBasedStatement).toMatchObject({
      Limit: 20,
      // Decoded and lower-cased before the match: `/unsubscrib%65/` is no way around it.
      ScopeDownStatement: {
        RegexMatchStatement: {
          RegexString: '/unsubscribe/?$',
          TextTransformations: [
            { Priority: 0, Type: 'URL_DECODE' },
            { Priority: 1, Type: 'LOWERCASE' },
          ],
        },
      },
    });
    // Below the stage's burst for the one-click POST: one address can never drain what a real click needs.
    const [, stage] = resourcesOfType(template, 'AWS::ApiGateway::Stage')[0] ?? [];
    const oneClick = ((stage?.Properties?.MethodSettings ?? []) as Record<string, unknown>[]).find(
      (setting) => setting.ResourcePath === '/~1unsubscribe' && setting.HttpMethod === 'POST',
    );
    const perAddress = rate('UnsubscribePerIp')?.Statement.RateBasedStatement?.Limit as number;
    expect(perAddress).toBeLessThan(oneClick?.ThrottlingBurstLimit as number);
    expect(rate('UnsubscribePerIp')?.Action?.Block?.CustomResponse?.ResponseCode).toBe(429);
    assertions.hasResourceProperties('AWS::WAFv2::WebACLAssociation', {
      WebACLArn: { 'Fn::GetAtt': [aclId, 'Arn'] },
    });
    assertions.hasResourceProperties('AWS::WAFv2::LoggingConfiguration', {
      ResourceArn: { 'Fn::GetAtt': [aclId, 'Arn'] },
      RedactedFields: [{ SingleHeader: { Name: 'x-api-key' } }, { QueryString: {} }],
    });
    // The rule's pattern, as the local gateway reads it, takes every spelling of the route.
    const pattern = readRateRules(template).find((rule) => rule.name === 'UnsubscribePerIp')?.pathPattern;
    for (const path of ['/v1/unsubscribe', '/unsubscribe/']) expect(pattern?.test(path)).toBe(true);
    expect(pattern?.test('/v1/unsubscribe/other')).toBe(false);
    const [, logs] =
      resourcesOfType(template, 'AWS::Logs::LogGroup').find(([id]) => baseId(id) === 'WafLogs') ?? [];
    expect(String(logs?.Properties?.LogGroupName)).toMatch(/^aws-waf-logs-/);
    expect(logs?.Properties?.RetentionInDays).toBe(30);
  });

  it('leaves the web ACL out with waf=false (an API behind an ACL of its own)', () => {
    const without = synthesizeForTests({ waf: false });
    without.assertions.resourceCountIs('AWS::WAFv2::WebACL', 0);
    without.assertions.resourceCountIs('AWS::WAFv2::WebACLAssociation', 0);
  });

  it('reserves (and caps) the concurrency of the functions anyone may call, and only theirs', () => {
    const reserved = resourcesOfType(template, 'AWS::Lambda::Function')
      .filter(([, fn]) => fn.Properties?.ReservedConcurrentExecutions !== undefined)
      .map(([, fn]) => [fn.Properties?.Description, fn.Properties?.ReservedConcurrentExecutions])
      .sort();
    expect(reserved).toEqual([
      ['GET /health and GET /health/details', 5],
      ['GET /openapi.json', 5],
      ['GET|POST /unsubscribe', 5],
    ]);
    const none = synthesizeForTests({ publicFunctionConcurrency: 0 });
    for (const [, fn] of resourcesOfType(none.template, 'AWS::Lambda::Function'))
      expect(fn.Properties?.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('caps the whole stage with its own throttle, logs access and traces', () => {
    assertions.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'v1',
      TracingEnabled: true,
      AccessLogSetting: Match.objectLike({ DestinationArn: Match.anyValue() }),
      MethodSettings: Match.arrayWith([
        Match.objectLike({
          ResourcePath: '/*',
          HttpMethod: '*',
          ThrottlingRateLimit: 500,
          ThrottlingBurstLimit: 1000,
        }),
      ]),
    });
  });

  it("says when to come back on API Gateway's own 429s: the slowest throttle's refill (POST /send-email's 5 a minute: 12 s), an hour past the quota", () => {
    for (const [type, seconds] of [
      ['THROTTLED', '12'],
      ['QUOTA_EXCEEDED', '3600'],
    ]) {
      assertions.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
        ResponseType: type,
        ResponseParameters: { 'gatewayresponse.header.Retry-After': `'${seconds}'` },
        ResponseTemplates: { 'application/json': '{"message":$context.error.messageString}' },
      });
    }
    // Read by the local gateway as it reads the rest of the API.
    const { gatewayResponses } = readApiModel(template, new IntrinsicResolver(template));
    expect(gatewayResponses.get('THROTTLED')).toEqual({
      headers: { 'Retry-After': '12' },
      template: '{"message":$context.error.messageString}',
    });
  });

  it('throttles the public unsubscribe routes on the stage, for every caller together', () => {
    const model = readApiModel(template, new IntrinsicResolver(template));
    for (const method of ['GET', 'POST'])
      expect(model.stageThrottles.get(`/unsubscribe/${method}`)).toEqual({ rateLimit: 20, burstLimit: 40 });
    // In CloudFormation's own form, not only as the local reader understands it.
    assertions.hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: Match.arrayWith([
        Match.objectLike({ ResourcePath: '/~1unsubscribe', HttpMethod: 'POST', ThrottlingRateLimit: 20 }),
      ]),
    });
  });

  /** The functions that read a secret: the roles whose policies name it. */
  const readersOf = (secretId: string) =>
    Object.entries(assertions.findResources('AWS::IAM::Policy'))
      .filter(([, policy]) => JSON.stringify(policy.Properties).includes(`"Ref":"${secretId}"`))
      .map(([, policy]) => (policy.Properties.Roles as { Ref: string }[]).map((role) => role.Ref).join());

  it('lets only the functions that let an address in, suppress one, accept an erasure or lift one read the address key', () => {
    const secretId = logicalIdOf(assertions, 'AWS::SecretsManager::Secret', 'DataAddressKey');
    expect(
      readersOf(secretId)
        .map((role) => role.replace(/Role[0-9A-F]{8}$/, ''))
        .sort(),
    ).toEqual(
      [
        'EmailJobsSendEmail',
        'NonprofitsCreateNonprofit',
        'NonprofitsImportNonprofits',
        'PeopleRequestErasure',
        // An export is refused while an erasure of the address (held by its key) runs.
        'PeopleRequestExport',
        // A suppression of an address erased already stores nothing: its key's record stands.
        'SesFeedbackRecordFeedback',
        'SuppressionsPutSuppression',
        'SuppressionsGetSuppression',
        'UnsubscribeUnsubscribe',
        'SuppressionsDeleteSuppression',
      ].sort(),
    );
    expect(assertions.findResources('AWS::SecretsManager::Secret')[secretId]).toMatchObject({
      DeletionPolicy: 'Retain',
      Properties: { GenerateSecretString: { PasswordLength: 64, ExcludePunctuation: true } },
    });
  });

  it('lets only the consumer and the unsubscribe function read the link secret, and only its rotation function change it', () => {
    const secretId = logicalIdOf(assertions, 'AWS::SecretsManager::Secret', 'UnsubscribeSigningSecret');
    expect(secretId).toBeDefined();
    expect(readersOf(secretId)).toHaveLength(3);
    for (const description of ['GET|POST /unsubscribe', FUNCTION.consumer]) {
      const actions = actionsOf(description, 'secretsmanager:');
      expect(actions).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
    }
    const rotation = 'Rotates the unsubscribe link secret (Secrets Manager rotation function)';
    expect(actionsOf(rotation, 'secretsmanager:')).toEqual([
      'secretsmanager:DescribeSecret',
      'secretsmanager:GetRandomPassword',
      'secretsmanager:GetSecretValue',
      'secretsmanager:PutSecretValue',
      'secretsmanager:UpdateSecretVersionStage',
    ]);
    // Rotated on the configured schedule by that function, not at deploy (a secret kept by an
    // upgrade keeps its links working for a whole period).
    assertions.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      SecretId: { Ref: secretId },
      RotationLambdaARN: {
        'Fn::GetAtt': [
          logicalIdOf(assertions, 'AWS::Lambda::Function', 'UnsubscribeRotateSigningSecret'),
          'Arn',
        ],
      },
      // Within two hours of its day's start: two rotations are never closer than the period less two hours.
      RotationRules: { ScheduleExpression: 'rate(90 days)', Duration: '2h' },
      RotateImmediatelyOnUpdate: false,
    });
    assertions.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'secretsmanager.amazonaws.com',
      SourceAccount: { Ref: 'AWS::AccountId' },
    });
    // Kept when the stack goes, as the tables are: a new secret would break every link already sent.
    expect(assertions.findResources('AWS::SecretsManager::Secret')[secretId as string]).toMatchObject({
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    // Its value is generated at deploy: never in the template.
    expect(
      assertions.findResources('AWS::SecretsManager::Secret')[secretId as string]?.Properties,
    ).toMatchObject({
      GenerateSecretString: { PasswordLength: 64, ExcludePunctuation: true },
    });
    expect(JSON.stringify(template)).not.toMatch(/"SecretString"\s*:/);
  });

  it('rotates the link secret as often as configured, never more often than every 31 days (a link lives 30)', () => {
    expect(() => synthesizeForTests({ unsubscribeSecretRotationDays: 30 })).toThrow(
      /unsubscribeSecretRotationDays/,
    );
  });

  it('serves locally exactly the documented routes, each integrated with its own function', () => {
    const model = readApiModel(template, new IntrinsicResolver(template));
    const served = model.routes.map((route) => `${route.method} ${route.resourcePath}`).sort();
    expect(served).toEqual(DOCUMENTED_ROUTES);
    expect(new Set(model.routes.map((route) => route.functionLogicalId)).size).toBe(
      DOCUMENTED_ROUTES.length - 3,
    );
    expect(resourcesOfType(template, 'AWS::ApiGateway::Method')).toHaveLength(DOCUMENTED_ROUTES.length);
  });
});

describe('email pipeline', () => {
  const keysOf = (table: string) =>
    Object.values(assertions.findResources('AWS::DynamoDB::Table')).find((resource) =>
      JSON.stringify(resource.Properties?.KeySchema).includes(table),
    )?.Properties;

  it('keeps jobs by id with indexes by API key (newest first), of running jobs and of scheduled jobs by time', () => {
    expect(keysOf('job_id')).toBeDefined();
    assertions.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'job_id', KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: 'by-api-key',
          KeySchema: [
            { AttributeName: 'api_key_id', KeyType: 'HASH' },
            { AttributeName: 'created_at', KeyType: 'RANGE' },
          ],
        }),
        Match.objectLike({
          IndexName: 'active',
          KeySchema: [
            { AttributeName: 'active', KeyType: 'HASH' },
            { AttributeName: 'created_at', KeyType: 'RANGE' },
          ],
        }),
        Match.objectLike({
          IndexName: 'scheduled',
          KeySchema: [
            { AttributeName: 'scheduled', KeyType: 'HASH' },
            { AttributeName: 'send_at', KeyType: 'RANGE' },
          ],
        }),
      ],
    });
  });

  it('keeps deliveries by job and recipient, with no index (nothing reads them otherwise), and job contents by job and part', () => {
    assertions.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'job_id', KeyType: 'HASH' },
        { AttributeName: 'recipient', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: Match.absent(),
    });
    assertions.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'job_id', KeyType: 'HASH' },
        { AttributeName: 'part', KeyType: 'RANGE' },
      ],
    });
    for (const table of Object.values(assertions.findResources('AWS::DynamoDB::Table'))) {
      expect(table.Properties?.BillingMode).toBe('PAY_PER_REQUEST');
      expect(table.Properties?.PointInTimeRecoverySpecification).toEqual({
        PointInTimeRecoveryEnabled: true,
      });
    }
  });

  it("sets the queue's visibility timeout to six times the consumer's timeout, and redrives after 5 receives", () => {
    const [, consumer] = functionByDescription(FUNCTION.consumer);
    assertions.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: consumer.Properties.Timeout * 6,
      RedrivePolicy: { maxReceiveCount: 5, deadLetterTargetArn: Match.anyValue() },
      KmsMasterKeyId: Match.anyValue(),
    });
  });

  it('refuses plain-HTTP access to every queue (emails, SES feedback and person requests, each with its dead-letter queue)', () => {
    const policies = Object.values(assertions.findResources('AWS::SQS::QueuePolicy'));
    expect(policies).toHaveLength(6);
    for (const policy of policies) {
      expect(JSON.stringify(policy)).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('feeds the consumer in batches with a window, a maximum concurrency and partial batch responses', () => {
    const [consumerId] = functionByDescription(FUNCTION.consumer);
    assertions.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: consumerId },
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: 1,
      // cdk.json's SES send rate, 14 a second, at about ten a second per environment (lib/send-rate.ts).
      ScalingConfig: { MaximumConcurrency: 2 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    // The consumer, the dead-letter consumer, the SES feedback consumer, the outcome counter, the
    // events' publisher and the person requests' worker.
    assertions.resourceCountIs('AWS::Lambda::EventSourceMapping', 6);
  });

  it("counts outcomes from the deliveries table's stream: every change from the first, a batch retried whole until counted", () => {
    const [counterId] = functionByDescription(FUNCTION.counter);
    const [deliveriesId] = Object.keys(
      assertions.findResources('AWS::DynamoDB::Table', {
        Properties: { StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' } },
      }),
    );
    expect(deliveriesId).toMatch(/^DataDeliveries/);
    assertions.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: counterId },
      EventSourceArn: { 'Fn::GetAtt': [deliveriesId, 'StreamArn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 1000,
      MaximumBatchingWindowInSeconds: 5,
      // A split batch would start from another record (it names each job's part), a dropped one would leave jobs running.
      BisectBatchOnFunctionError: false,
      MaximumRetryAttempts: -1,
    });
    // The batches' marks beside the jobs expire.
    assertions.hasResourceProperties('AWS::DynamoDB::Table', {
      TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
      KeySchema: [{ AttributeName: 'job_id', KeyType: 'HASH' }],
    });
  });

  it('throttles POST /send-email per key more strictly than the plan: 5 a minute, burst 5; its preview one a second, burst 5; an import one every two seconds, burst 2', () => {
    assertions.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      ApiStages: [
        Match.objectLike({
          Throttle: {
            '/send-email/POST': { RateLimit: 5 / 60, BurstLimit: 5 },
            '/send-email/preview/POST': { RateLimit: 1, BurstLimit: 5 },
            '/nonprofits/import/POST': { RateLimit: 0.5, BurstLimit: 2 },
          },
        }),
      ],
    });
  });

  it('runs the sweeper on its configured rate, and the starter of scheduled jobs every minute', () => {
    const [sweeperId] = functionByDescription(FUNCTION.sweeper);
    const [starterId] = functionByDescription(
      'Starts scheduled jobs at their send_at: enqueues their recipients',
    );
    assertions.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [sweeperId, 'Arn'] } })],
    });
    assertions.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [starterId, 'Arn'] } })],
    });
    const custom = synthesizeForTests({
      sweeperRateMinutes: 5,
      // A rate at which 50 messages of ten fit in half the consumer's timeout.
      sesMaxSendRate: 2000,
      consumerBatchSize: 50,
      sendEmailRequestsPerMinute: 60,
    });
    const [customSweeperId] = queries.functionByDescription(custom.assertions, FUNCTION.sweeper);
    custom.assertions.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [customSweeperId, 'Arn'] } })],
    });
    custom.assertions.hasResourceProperties('AWS::Lambda::EventSourceMapping', { BatchSize: 50 });
    custom.assertions.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      ApiStages: [
        Match.objectLike({
          Throttle: Match.objectLike({ '/send-email/POST': { RateLimit: 1, BurstLimit: 5 } }),
        }),
      ],
    });
  });
});

describe('monitoring', () => {
  const dashboardBody = () => {
    const [dashboard] = Object.values(assertions.findResources('AWS::CloudWatch::Dashboard'));
    const body = dashboard?.Properties?.DashboardBody as { 'Fn::Join': [string, unknown[]] };
    // The body is a Fn::Join of JSON text and references; the references become placeholders.
    return body['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : 'REF')).join('');
  };
  const widgetMetrics = (): string[][] =>
    (JSON.parse(dashboardBody()) as { widgets: { properties: { metrics?: unknown[][] } }[] }).widgets.flatMap(
      (widget) =>
        (widget.properties.metrics ?? []).map(
          (metric) => metric.filter((part) => typeof part === 'string') as string[],
        ),
    );

  it('has one dashboard whose own-namespace widgets watch metrics the functions emit, by service only', () => {
    assertions.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    const own = widgetMetrics().filter(([namespace]) => namespace === METRICS_NAMESPACE);
    const emitted = new Set<string>(Object.values(METRIC));
    expect(own.length).toBeGreaterThan(8);
    for (const [, name, ...dimensions] of own) {
      expect(emitted).toContain(name);
      expect(dimensions).toEqual(['service', SERVICE_NAME]);
    }
  });

  it('watches every route, the queues and every function', () => {
    const metrics = widgetMetrics();
    const routeMetrics = metrics.filter(
      ([namespace, name]) => namespace === 'AWS/ApiGateway' && name === 'Latency',
    );
    expect(routeMetrics).toHaveLength(DOCUMENTED_ROUTES.length);
    const queueMetrics = new Set(
      metrics.filter(([namespace]) => namespace === 'AWS/SQS').map(([, name]) => name),
    );
    expect(queueMetrics).toEqual(
      new Set([
        'ApproximateNumberOfMessagesVisible',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateAgeOfOldestMessage',
      ]),
    );
    for (const name of ['Errors', 'Throttles', 'Duration']) {
      expect(
        metrics.filter(([namespace, metric]) => namespace === 'AWS/Lambda' && metric === name),
      ).toHaveLength(FUNCTION_COUNT);
    }
  });

  it('turns on per-method API metrics', () => {
    assertions.hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: Match.arrayWith([Match.objectLike({ MetricsEnabled: true })]),
    });
  });

  it.each([
    ['DeadLettersWaiting', 'ApproximateNumberOfMessagesVisible', 1, 'GreaterThanOrEqualToThreshold'],
    ['OldestEmailTooOld', 'ApproximateAgeOfOldestMessage', 900, 'GreaterThanThreshold'],
    ['ConsumerErrors', 'Errors', 1, 'GreaterThanOrEqualToThreshold'],
    ['LinkSecretRotationErrors', 'Errors', 1, 'GreaterThanOrEqualToThreshold'],
    ['SendingPaused', METRIC.sendingPaused, 1, 'GreaterThanOrEqualToThreshold'],
  ])('alarms %s on %s at %d', (name, metricName, threshold, comparison) => {
    assertions.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: `NonprofitMailer-${name}`,
      MetricName: metricName,
      Threshold: threshold,
      ComparisonOperator: comparison,
      TreatMissingData: 'notBreaching',
    });
  });

  it("alarms when SES refuses to send: the consumers' SendingPaused metric, in the app's namespace, to the alarm topic", () => {
    const topicId = alarmTopicId();
    const alarms = Object.values(
      assertions.findResources('AWS::CloudWatch::Alarm', {
        Properties: { AlarmName: 'NonprofitMailer-SendingPaused' },
      }),
    );
    expect(alarms).toHaveLength(1);
    expect(alarms[0]?.Properties).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.sendingPaused,
      Dimensions: [{ Name: 'service', Value: SERVICE_NAME }],
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [{ Ref: topicId }],
      OKActions: [{ Ref: topicId }],
    });
  });

  it('alarms on an API 5xx rate above 1 % over 5 minutes, and on throttles of any function', () => {
    assertions.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'NonprofitMailer-Api5xxRate',
      Threshold: 1,
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'IF(requests > 0, 100 * errors / requests, 0)' }),
      ]),
    });
    const throttleAlarms = Object.values(assertions.findResources('AWS::CloudWatch::Alarm')).filter((alarm) =>
      String(alarm.Properties?.AlarmName).includes('FunctionThrottles'),
    );
    const watched = throttleAlarms.flatMap((alarm) =>
      ((alarm.Properties?.Metrics ?? []) as { MetricStat?: unknown }[]).filter((metric) => metric.MetricStat),
    );
    expect(watched).toHaveLength(FUNCTION_COUNT);
  });

  it('never pages on missing data, and sends every alarm and recovery to one encrypted topic', () => {
    const alarms = Object.values(assertions.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThanOrEqual(5);
    for (const alarm of alarms) {
      // SES's reputation rates arrive now and then: a gap keeps the state (never ALARM by itself).
      const reputation = String(alarm.Properties?.MetricName).startsWith('Reputation.');
      expect(alarm.Properties?.TreatMissingData).toBe(reputation ? 'ignore' : 'notBreaching');
      expect(alarm.Properties?.AlarmActions).toEqual([{ Ref: alarmTopicId() }]);
      expect(alarm.Properties?.OKActions).toEqual(alarm.Properties?.AlarmActions);
    }
    const keyId = queries.topicKeyId(template, alarmTopicId());
    expect(template.Resources[keyId]?.Type).toBe('AWS::KMS::Key');
    // Without alarmEmail nobody is subscribed to alarms (the SES feedback queue is the only subscription).
    expect(
      Object.values(assertions.findResources('AWS::SNS::Subscription')).map(
        (sub) => sub.Properties?.Protocol,
      ),
    ).toEqual(['sqs']);
  });

  it('encrypts the alarm topic with a rotated customer-managed key whose policy lets CloudWatch publish', () => {
    assertions.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
          }),
        ]),
      },
    });
    expect(JSON.stringify(template)).not.toContain('alias/aws/sns');
  });

  it('subscribes the configured email to the alarm topic, and takes the thresholds from configuration', () => {
    const custom = synthesizeForTests({ alarmEmail: 'ops@example.org', alarmOldestMessageSeconds: 120 });
    custom.assertions.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.org',
    });
    custom.assertions.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'NonprofitMailer-OldestEmailTooOld',
      Threshold: 120,
    });
  });

  it("lets /health read only this stack's alarms", () => {
    expect(actionsOf(FUNCTION.health, 'cloudwatch:')).toEqual(['cloudwatch:DescribeAlarms']);
    expect(JSON.stringify(template)).toContain(':alarm:NonprofitMailer-*');
  });
});

/** The constructs that acknowledge a cdk-nag finding matching the test (by its id and reason). */
const acknowledgedWhere = (root: Construct, matches: (id: string, reason: string) => boolean) =>
  root.node
    .findAll()
    .filter((construct) =>
      construct.node.metadata.some(
        (entry) =>
          entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY &&
          Object.entries(entry.data as Record<string, string>).some(([id, reason]) => matches(id, reason)),
      ),
    );

describe('cdk-nag', () => {
  it('passes the AwsSolutions and Serverless packs, every acknowledgement with a reason', () => {
    // Synthesis above would have thrown on an unacknowledged finding; acknowledgements stay in construct metadata.
    const acknowledgements = stack.node
      .findAll()
      .flatMap((construct) => construct.node.metadata)
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) => Object.entries(entry.data as Record<string, string>))
      .map(([id, reason]) => ({ id, reason }));
    expect(acknowledgements.length).toBeGreaterThan(0);
    // The web ACL is there: no finding about its absence is acknowledged.
    expect(acknowledgements.map(({ id }) => id)).not.toContainEqual(expect.stringContaining('APIG3'));
    // The link secret rotates; the address key is the one secret that may not (it keys erased
    // addresses: a new key would make each of them unknown again).
    const unrotated = acknowledgedWhere(stack, (id) => id.includes('SMG4')).map(
      (construct) => construct.node.path,
    );
    expect(unrotated).toEqual([expect.stringMatching(/\/AddressKey$/)]);
    for (const { id, reason } of acknowledgements) {
      expect(id).toMatch(/^(AwsSolutions|Serverless)::/);
      expect(reason.length).toBeGreaterThan(30);
    }
  });

  it('passes with every SES setting (configuration set, the sandbox, reply-to) and with the record transport', () => {
    for (const context of [
      {
        fromAddress: 'news@example.org',
        senderPostalAddress: '1 Main St, Springfield',
        replyTo: 'replies@example.org',
        sesConfigurationSet: 'marketing',
        sesSandbox: true,
      },
      { transport: 'record', storeRenderedEmails: false },
    ]) {
      const { app } = createApp({
        context: { ...cdkJsonContext(), ...context, 'aws:cdk:bundling-stacks': [] },
      });
      expect(() => app.synth()).not.toThrow();
    }
  });

  it("acknowledges ses:GetAccount on * for the roles that read SES's state only, with its reason", () => {
    const { stack } = synthesizeForTests({ sesConfigurationSet: 'marketing' });
    const acknowledged = acknowledgedWhere(stack, (_id, reason) => reason.includes('ses:GetAccount'));
    // /health's, and the sending controls' that read SES's state (GET /sending, its resume).
    expect(new Set(acknowledged)).toEqual(
      new Set([
        stack.monitoring.health.role,
        ...stack.node
          .findAll()
          .filter((construct) =>
            /SendingControls\/(GetSending|ResumeSending)Role$/.test(construct.node.path),
          ),
      ]),
    );
  });

  it('fails synthesis on a finding nobody acknowledged', () => {
    const { stack } = createApp({
      context: { transport: 'record', 'aws:cdk:bundling-stacks': [] },
    });
    new Queue(stack, 'UnreviewedQueue');
    expect(() => synthesizeAppOf(stack)).toThrow(/AwsSolutions-SQS4/);
  });
});

function synthesizeAppOf(stack: { node: { root: unknown } }) {
  return (stack.node.root as { synth: () => unknown }).synth();
}

// The README's "Personal data" table says where the stack keeps what of a person, and for how long.
// These tests hold it to the synthesized template, so neither can change without the other.

const ofType = (type: string) => resourcesOfType(template, type);

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(
  readme.indexOf('## Personal data'),
  readme.indexOf('\n## ', readme.indexOf('## Personal data') + 1),
);
/** The table's rows: the resource each names (its logical id, without CDK's hash) and what its "Kept" column says. */
const rows = new Map(
  section
    .split('\n')
    .filter((line) => /^\| `/.test(line))
    .map((line) => {
      const cells = line.split('|').map((cell) => cell.trim());
      return [/`([^`]+)`/.exec(cells[1] ?? '')?.[1] ?? '', cells[3] ?? ''] as const;
    }),
);
const keptFor = (id: string) => {
  const kept = rows.get(id);
  if (kept === undefined) throw new Error(`README's "Personal data" has no row for ${id}`);
  return kept;
};
const daysIn = (kept: string) => Number(/(\d+) days/.exec(kept)?.[1]);

describe(`the README's "Personal data" table`, () => {
  it('names every table, and says TTL exactly where the template has one, with the setting and its default', () => {
    const shape = configSchema.shape as Record<string, { parse(value: unknown): unknown }>;
    for (const [logicalId, table] of ofType('AWS::DynamoDB::Table')) {
      const kept = keptFor(baseId(logicalId));
      const ttl = table.Properties?.TimeToLiveSpecification as { Enabled?: boolean } | undefined;
      expect(kept.includes('by TTL'), `${logicalId}: ${kept}`).toBe(ttl?.Enabled === true);
      const setting = /`(\w+RetentionDays)` \(default (\d+)\)/.exec(kept);
      if (setting) expect(shape[setting[1] as string]?.parse(undefined), kept).toBe(Number(setting[2]));
    }
  });

  it('names every queue with its retention', () => {
    for (const [logicalId, queue] of ofType('AWS::SQS::Queue')) {
      const seconds = Number(queue.Properties?.MessageRetentionPeriod);
      expect(daysIn(keptFor(baseId(logicalId))) * 86_400, logicalId).toBe(seconds);
    }
  });

  it('gives every log group the stack causes a retention, as the table says', () => {
    const groups = ofType('AWS::Logs::LogGroup');
    const functions = ofType('AWS::Lambda::Function');
    // Each function writes to a log group of the stack's, none to one Lambda would create unkept.
    for (const [logicalId, fn] of functions) {
      const logging = fn.Properties?.LoggingConfig as { LogGroup?: { Ref?: string } } | undefined;
      expect(logging?.LogGroup?.Ref, logicalId).toEqual(expect.any(String));
    }
    for (const [logicalId, group] of groups) {
      const id = baseId(logicalId);
      const row = rows.has(id) ? id : '…Logs';
      expect(group.Properties?.RetentionInDays, logicalId).toBe(daysIn(keptFor(row)));
    }
    // API Gateway's execution logs go to the group it names for the stage: the stack declares it first.
    const execution = groups.find(([logicalId]) => baseId(logicalId) === 'ApiExecutionLogs')?.[1];
    expect(JSON.stringify(execution?.Properties?.LogGroupName)).toContain('API-Gateway-Execution-Logs_');
    // Beside the functions': the API's access and execution logs, and the web ACL's.
    expect(groups.length).toBe(functions.length + 3);
  });
});
