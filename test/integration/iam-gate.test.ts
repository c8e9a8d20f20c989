import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ProjectFunction } from '../../lib/constructs/project-function';
import { LOCAL_CREDENTIALS } from '../../local/dynamodb';
import {
  accessKeyIdOf,
  authorizationsFor,
  isAllowed,
  readFunctionPolicies,
  type Statement,
  startIamGate,
} from '../../local/iam';
import type { ObservingProxy } from '../../local/observing-proxy';
import {
  type CfnTemplate,
  IntrinsicResolver,
  LOCAL_REGION,
  referencedLogicalId,
  resourcesOfType,
} from '../../local/template';
import { tableNamed, tablesOfThisFile } from '../support/local-tables';
import { synthesizeForTests } from '../support/synth';

const gates: ObservingProxy[] = [];
const clients: DynamoDBClient[] = [];
afterAll(async () => {
  for (const client of clients) client.destroy();
  await Promise.all(gates.map((gate) => gate.stop()));
});

/** The synthesized stack, and the logical id of the function serving `entry`. */
function synthesized() {
  const { stack, template } = synthesizeForTests();
  const logicalIdOf = (entry: string) => {
    const fn = stack.node
      .findAll()
      .find(
        (construct): construct is ProjectFunction =>
          construct instanceof ProjectFunction && construct.entry === entry,
      );
    if (!fn) throw new Error(`No function for ${entry}`);
    return stack.getLogicalId(fn.node.defaultChild as CfnFunction);
  };
  return { template, logicalIdOf };
}

/** A gate in front of the run's DynamoDB Local, for this template, and a client that signs as `functionId`. */
async function gatedClient(template: CfnTemplate, functionId: string) {
  const resolver = new IntrinsicResolver(template);
  for (const [logicalId, name] of Object.entries(tablesOfThisFile())) {
    resolver.register(logicalId, {
      ref: name,
      attributes: { Arn: resolver.arn('AWS::DynamoDB::Table', `table/${name}`) },
    });
  }
  const denied: string[] = [];
  const gate = await startIamGate({
    service: 'dynamodb',
    target: inject('dynamoDbEndpoint'),
    policies: readFunctionPolicies(template, resolver),
    trustedAccessKeyId: LOCAL_CREDENTIALS.accessKeyId,
    onDenied: (line) => denied.push(line),
  });
  gates.push(gate);
  const raw = new DynamoDBClient({
    endpoint: gate.endpoint,
    region: LOCAL_REGION,
    credentials: { accessKeyId: accessKeyIdOf(functionId), secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  clients.push(raw);
  return { client: DynamoDBDocumentClient.from(raw), denied };
}

const nonprofitsTable = () => tableNamed('DataNonprofits');

describe('IAM enforced locally, from the synthesized template', () => {
  it('lets a function do what its role allows, and answers AccessDeniedException for what it does not', async () => {
    const { template, logicalIdOf } = synthesized();
    const create = logicalIdOf('api/create-nonprofit.ts');
    const { client, denied } = await gatedClient(template, create);
    const email = `iam-${randomUUID()}@gate.example.org`;

    await client.send(
      new PutCommand({ TableName: nonprofitsTable(), Item: { email, name: 'Gate', address: '1 Policy St' } }),
    );
    // Creating grants no delete: the stack never gave this function dynamodb:DeleteItem.
    const refused = await client
      .send(new DeleteCommand({ TableName: nonprofitsTable(), Key: { email } }))
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ name: 'AccessDeniedException' });
    expect(String((refused as Error).message)).toContain('dynamodb:DeleteItem');
    expect(denied).toEqual([expect.stringContaining(`${create} is not allowed dynamodb:DeleteItem`)]);
  });

  it('denies a call once the grant for it is removed from the template', async () => {
    const { template, logicalIdOf } = synthesized();
    const read = logicalIdOf('api/get-nonprofit.ts');
    const roleId = referencedLogicalId(template.Resources[read]?.Properties?.Role);
    const allowed = await gatedClient(template, read);
    const key = { TableName: nonprofitsTable(), Key: { email: `absent-${randomUUID()}@gate.example.org` } };
    expect((await allowed.client.send(new GetCommand(key))).Item).toBeUndefined();

    // The same template without the statement that grants GetItem on the registry to that role.
    const withoutGrant = structuredClone(template);
    for (const [, policy] of resourcesOfType(withoutGrant, 'AWS::IAM::Policy')) {
      const properties = policy.Properties as {
        Roles: { Ref: string }[];
        PolicyDocument: { Statement: { Action: string | string[] }[] };
      };
      if (!properties.Roles.some((role) => role.Ref === roleId)) continue;
      properties.PolicyDocument.Statement = properties.PolicyDocument.Statement.filter(
        (statement) => ![statement.Action].flat().includes('dynamodb:GetItem'),
      );
    }
    const stripped = await gatedClient(withoutGrant, read);
    const refused = await stripped.client.send(new GetCommand(key)).catch((error: unknown) => error);
    expect(refused).toMatchObject({ name: 'AccessDeniedException' });
  });

  it('passes the runtime itself (standing for AWS), and denies a caller that is no function of the template', async () => {
    const { template } = synthesized();
    const email = `runtime-${randomUUID()}@gate.example.org`;
    const runtime = await gatedClient(template, LOCAL_CREDENTIALS.accessKeyId);
    await runtime.client.send(new PutCommand({ TableName: nonprofitsTable(), Item: { email } }));
    await runtime.client.send(new DeleteCommand({ TableName: nonprofitsTable(), Key: { email } }));

    const stranger = await gatedClient(template, 'NotAFunction');
    const refused = await stranger.client
      .send(new PutCommand({ TableName: nonprofitsTable(), Item: { email } }))
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ name: 'AccessDeniedException' });
  });
});

describe('the permissions a call needs', () => {
  const call = (target: string, body: unknown, method = 'POST', path = '/') => ({
    method,
    path,
    headers: { 'x-amz-target': target },
    body: Buffer.from(JSON.stringify(body)),
  });

  it('checks each item of a transaction as its own action on its own table', () => {
    expect(
      authorizationsFor(
        'dynamodb',
        call('DynamoDB_20120810.TransactWriteItems', {
          TransactItems: [
            { Put: { TableName: 'deliveries' } },
            { Update: { TableName: 'jobs' } },
            { ConditionCheck: { TableName: 'jobs' } },
          ],
        }),
      ).map(({ action, resources }) => [action, resources[0]?.split(':').pop()]),
    ).toEqual([
      ['dynamodb:PutItem', 'table/deliveries'],
      ['dynamodb:UpdateItem', 'table/jobs'],
      ['dynamodb:ConditionCheckItem', 'table/jobs'],
    ]);
  });

  it('checks a query on an index against the index, and an SQS batch as its single action', () => {
    expect(
      authorizationsFor(
        'dynamodb',
        call('DynamoDB_20120810.Query', { TableName: 'jobs', IndexName: 'active' }),
      )[0]?.resources,
    ).toEqual(['arn:aws:dynamodb:us-east-1:000000000000:table/jobs/index/active']);
    expect(
      authorizationsFor(
        'sqs',
        call('AmazonSQS.SendMessageBatch', { QueueUrl: 'http://127.0.0.1:1/000000000000/emails' }),
      ),
    ).toEqual([
      { action: 'sqs:SendMessage', resources: ['arn:aws:sqs:us-east-1:000000000000:emails'], context: {} },
    ]);
  });

  it('checks an SES send against the sender identity and configuration set, with ses:FromAddress', () => {
    const [identity, configurationSet] = authorizationsFor(
      'ses',
      call(
        '',
        {
          FromEmailAddress: 'News <news@example.org>',
          ConfigurationSetName: 'mailer',
          Destination: { ToAddresses: ['a@example.net'] },
        },
        'POST',
        '/v2/email/outbound-emails',
      ),
    );
    expect(identity).toMatchObject({
      action: 'ses:SendEmail',
      resources: [
        'arn:aws:ses:us-east-1:000000000000:identity/news@example.org',
        'arn:aws:ses:us-east-1:000000000000:identity/example.org',
      ],
      context: { 'ses:FromAddress': 'news@example.org', 'ses:Recipients': ['a@example.net'] },
    });
    expect(configurationSet?.resources).toEqual([
      'arn:aws:ses:us-east-1:000000000000:configuration-set/mailer',
    ]);
  });

  it('holds a statement to its conditions: a wrong sender is denied, an unknown operator never widens', () => {
    const send = (from: string) => ({
      action: 'ses:SendEmail',
      resources: ['arn:aws:ses:us-east-1:000000000000:identity/news@example.org'],
      context: { 'ses:FromAddress': from },
    });
    const allowSender: Statement = {
      effect: 'Allow',
      actions: ['ses:SendEmail'],
      resources: ['arn:aws:ses:*:*:identity/*'],
      conditions: { StringEquals: { 'ses:FromAddress': 'news@example.org' } },
    };
    const policy = (...statements: Statement[]) => ({
      functionLogicalId: 'Fn',
      roleName: 'Role',
      statements,
      unreadable: [],
    });
    expect(isAllowed(policy(allowSender), send('news@example.org'))).toBe(true);
    expect(isAllowed(policy(allowSender), send('other@example.org'))).toBe(false);
    // An operator this gate cannot evaluate: an Allow does not apply, a Deny does.
    const odd = { NumericLessThan: { 'ses:FromAddress': '1' } };
    expect(isAllowed(policy({ ...allowSender, conditions: odd }), send('news@example.org'))).toBe(false);
    expect(
      isAllowed(
        policy(allowSender, { ...allowSender, effect: 'Deny', conditions: odd }),
        send('news@example.org'),
      ),
    ).toBe(false);
    // ...IfExists holds where the call gives no such key.
    const ifExists = { StringEqualsIfExists: { 'ses:FeedbackAddress': 'x@example.org' } };
    expect(isAllowed(policy({ ...allowSender, conditions: ifExists }), send('news@example.org'))).toBe(true);
  });
});
