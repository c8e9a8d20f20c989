import { readFileSync } from 'node:fs';
import type { Template } from 'aws-cdk-lib/assertions';
import { expect } from 'vitest';
import { PROJECT_ROOT } from '../../local/synth';
import type { CfnTemplate } from '../../local/template';

/** The functions the infra tests look up, by the description the stack gives each. */
export const FUNCTION = {
  consumer: 'Claims, renders, sends and records the emails of a batch',
  deadLetterConsumer:
    'Records emails that reached the dead-letter queue as failed, or cancelled if their job was',
  sweeper: 'Re-enqueues the recipients of running jobs whose messages can no longer be queued',
  counter: "Adds the outcomes the deliveries table's stream records to their jobs' counters, and ends jobs",
  feedbackConsumer:
    'Suppresses addresses SES reports bounced or complaining, and notes each report on its job',
  publisher: "Puts the events the outbox table's stream brings on the EventBridge bus",
  personRequests: "Walks the ledger for a person's data request, a segment at a time",
  listJobEmails: 'GET /jobs/{job_id}/emails',
  health: 'GET /health and GET /health/details',
} as const;

/** cdk.json's context alone, as the CLI reads it (no test defaults such as the local From address). */
export const cdkJsonContext = (): Record<string, unknown> =>
  (JSON.parse(readFileSync(`${PROJECT_ROOT}cdk.json`, 'utf8')) as { context: Record<string, unknown> })
    .context;

export interface Statement {
  Effect?: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

export interface FunctionResource {
  Properties: {
    Description: string;
    Timeout: number;
    MemorySize: number;
    Role: { 'Fn::GetAtt': [string, string] };
    Environment: { Variables: Record<string, unknown> };
  };
}

export function functionByDescription(assertions: Template, description: string): [string, FunctionResource] {
  const found = Object.entries(
    assertions.findResources('AWS::Lambda::Function', { Properties: { Description: description } }),
  );
  expect(found).toHaveLength(1);
  return found[0] as [string, FunctionResource];
}

/** Every Lambda function of the template, by its description. */
export function functionDescriptions(assertions: Template): string[] {
  return Object.values(assertions.findResources('AWS::Lambda::Function')).map(
    (fn) => (fn as FunctionResource).Properties.Description,
  );
}

/** A function's environment variables as the template sets them (references left as they are). */
export function environmentOf(assertions: Template, description: string): Record<string, unknown> {
  return functionByDescription(assertions, description)[1].Properties.Environment.Variables;
}

/** Every statement of the policies attached to a function's role. */
export function statementsOf(assertions: Template, description: string): Statement[] {
  const [, fn] = functionByDescription(assertions, description);
  const roleId = fn.Properties.Role['Fn::GetAtt'][0];
  const policies = Object.values(
    assertions.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } }),
  ) as { Properties: { PolicyDocument: { Statement: Statement[] } } }[];
  return policies.flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

export const actionsOfStatement = (statement: Statement): string[] => [statement.Action].flat();

/** The distinct actions of a function's role that start with `prefix`, sorted. */
export function actionsOf(assertions: Template, description: string, prefix = 'dynamodb:'): string[] {
  return statementsOf(assertions, description)
    .flatMap(actionsOfStatement)
    .filter((action, index, all) => action.startsWith(prefix) && all.indexOf(action) === index)
    .sort();
}

/** A logical id without the hash CDK appends (`DataJobs1A2B3C4D` → `DataJobs`). */
export const baseId = (logicalId: string) => logicalId.replace(/[0-9A-F]{8}$/, '');

/** The logical id of the one resource of this type whose id, without its hash, is `id`. */
export function logicalIdOf(assertions: Template, type: string, id: string): string {
  const found = Object.keys(assertions.findResources(type)).filter((logicalId) => baseId(logicalId) === id);
  expect(found).toHaveLength(1);
  return found[0] as string;
}

/** Names a statement's resource by its table or queue (and index), from `Fn::GetAtt` or `Fn::Join`. */
export function resourceName(resource: unknown): string {
  if (typeof resource === 'string') return resource;
  const getAtt = (value: unknown) => {
    const [id, attribute] = (value as { 'Fn::GetAtt'?: [string, string] } | undefined)?.['Fn::GetAtt'] ?? [];
    if (id === undefined) return undefined;
    // A table's stream is a resource of its own.
    return attribute === 'StreamArn' ? `${baseId(id)}/stream` : baseId(id);
  };
  const direct = getAtt(resource);
  if (direct) return direct;
  const parts = (resource as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join']?.[1] ?? [];
  const [first, ...rest] = parts;
  const joined = getAtt(first);
  return joined ? `${joined}${rest.join('')}` : JSON.stringify(resource);
}

/**
 * What a function may do to data, resource by resource: DynamoDB and SQS actions by table, index and
 * queue, never merged across them, so an action granted on the wrong table shows.
 */
export function dataGrantsOf(assertions: Template, description: string): Record<string, string[]> {
  const grants: Record<string, Set<string>> = {};
  for (const statement of statementsOf(assertions, description)) {
    const actions = actionsOfStatement(statement).filter((action) => /^(dynamodb|sqs):/.test(action));
    if (actions.length === 0) continue;
    for (const resource of [statement.Resource].flat()) {
      const name = resourceName(resource);
      grants[name] ??= new Set();
      for (const action of actions) grants[name].add(action);
    }
  }
  return Object.fromEntries(Object.entries(grants).map(([name, actions]) => [name, [...actions].sort()]));
}

/**
 * An SES ARN in this account and region as `Stack.formatArn` renders it in an environment-agnostic
 * stack: a `Fn::Join` of the partition, region and account pseudo parameters.
 */
export const sesArn = (resource: string) => ({
  'Fn::Join': [
    '',
    [
      'arn:',
      { Ref: 'AWS::Partition' },
      ':ses:',
      { Ref: 'AWS::Region' },
      ':',
      { Ref: 'AWS::AccountId' },
      `:${resource}`,
    ],
  ],
});

/** A statement's resources in a stable order, to compare as a set. */
export const sortedResources = (resources: unknown): unknown[] =>
  [resources]
    .flat()
    .map((resource) => JSON.stringify(resource))
    .sort()
    .map((text) => JSON.parse(text) as unknown);

/** The event source mapping that feeds the function with this logical id. */
export function eventSourceOf(
  assertions: Template,
  functionLogicalId: string,
): { BatchSize: number; ScalingConfig?: { MaximumConcurrency?: number } } {
  const found = Object.values(
    assertions.findResources('AWS::Lambda::EventSourceMapping', {
      Properties: { FunctionName: { Ref: functionLogicalId } },
    }),
  );
  expect(found).toHaveLength(1);
  return (found[0] as { Properties: { BatchSize: number; ScalingConfig?: { MaximumConcurrency?: number } } })
    .Properties;
}

/** The logical id of the KMS key a topic is encrypted with (empty when it has none). */
export function topicKeyId(template: CfnTemplate, topicId: string): string {
  const key = template.Resources[topicId]?.Properties?.KmsMasterKeyId as
    | { 'Fn::GetAtt'?: [string, string] }
    | undefined;
  return key?.['Fn::GetAtt']?.[0] ?? '';
}
