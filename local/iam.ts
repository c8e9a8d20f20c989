import type { IncomingHttpHeaders } from 'node:http';
import { type Exchange, type LocalAnswer, type ObservingProxy, startObservingProxy } from './observing-proxy';
import {
  type CfnTemplate,
  type IntrinsicResolver,
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  referencedLogicalId,
  resourcesOfType,
} from './template';

/**
 * IAM, locally: each function's calls are held to its role's policy from the synthesized template,
 * as AWS holds them, so a grant the stack forgot fails here, in a test, instead of in the cloud.
 * Each function signs with its own access key id (its logical id), which names the caller to the
 * gate in front of each engine; the gate forwards what the policy allows and answers the rest with
 * the service's own `AccessDeniedException`.
 *
 * What it evaluates: the role's inline policies and every `AWS::IAM::Policy` or
 * `AWS::IAM::ManagedPolicy` of the template attached to it; `Allow` and `Deny`, `Action`/`NotAction`,
 * `Resource`/`NotResource` with `*` and `?` wildcards; and the string and ARN condition operators
 * (`StringEquals`, `StringLike`, their negations, `ArnLike`, `ArnEquals`, `ForAllValues:`/`ForAnyValue:`)
 * over the keys the calls below supply (`ses:FromAddress`, `ses:Recipients`). AWS-managed policies
 * attached by ARN cannot be read locally: they allow nothing here (a note says so at start).
 */

/** The services whose calls the gate can read: the engines the local runtime brings up. */
export type GatedService = 'dynamodb' | 'sqs' | 'ses' | 'secretsmanager' | 'apigateway' | 'events';

/** One statement of an identity policy, its intrinsics resolved. */
export interface Statement {
  effect: 'Allow' | 'Deny';
  actions?: string[];
  notActions?: string[];
  resources?: string[];
  notResources?: string[];
  conditions?: Record<string, Record<string, unknown>>;
}

/** What one function's role may do. */
export interface FunctionPolicy {
  functionLogicalId: string;
  roleName: string;
  statements: Statement[];
  /** AWS-managed policies attached by ARN: not in the template, so they allow nothing locally. */
  unreadable: string[];
}

/**
 * One permission a call needs: the action on a resource (any one of `resources` will do: SES
 * accepts the sending address's own identity or its domain's), with the condition keys the call supplies.
 */
export interface Authorization {
  action: string;
  resources: string[];
  context: Record<string, string | string[]>;
}

/** The access key id a function signs with locally: its logical id (alphanumeric, as DynamoDB Local wants). */
export const accessKeyIdOf = (functionLogicalId: string) => functionLogicalId;

/** Every function's policy, by the access key id it signs with. */
export function readFunctionPolicies(
  template: CfnTemplate,
  resolver: IntrinsicResolver,
): Map<string, FunctionPolicy> {
  const attached = new Map<string, unknown[]>();
  const attach = (roleId: string, document: unknown) =>
    attached.set(roleId, [...(attached.get(roleId) ?? []), document]);
  for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']) {
    for (const [, policy] of resourcesOfType(template, type)) {
      const properties = policy.Properties ?? {};
      for (const role of (properties.Roles as unknown[] | undefined) ?? []) {
        const roleId = referencedLogicalId(role);
        if (roleId) attach(roleId, properties.PolicyDocument);
      }
    }
  }
  const policies = new Map<string, FunctionPolicy>();
  for (const [functionLogicalId, fn] of resourcesOfType(template, 'AWS::Lambda::Function')) {
    const roleId = referencedLogicalId(fn.Properties?.Role);
    const role = roleId ? template.Resources[roleId] : undefined;
    if (!roleId || !role) {
      // A role given by ARN (not of this template) cannot be read here: the function may do nothing.
      policies.set(accessKeyIdOf(functionLogicalId), {
        functionLogicalId,
        roleName: String(resolver.resolve(fn.Properties?.Role) ?? 'unknown'),
        statements: [],
        unreadable: [JSON.stringify(resolver.resolve(fn.Properties?.Role))],
      });
      continue;
    }
    const inline = ((role.Properties?.Policies as { PolicyDocument: unknown }[] | undefined) ?? []).map(
      (policy) => policy.PolicyDocument,
    );
    const documents = [...inline, ...(attached.get(roleId) ?? [])];
    policies.set(accessKeyIdOf(functionLogicalId), {
      functionLogicalId,
      roleName: roleId,
      statements: documents.flatMap((document) => statementsOf(resolver.resolve(document))),
      unreadable: ((role.Properties?.ManagedPolicyArns as unknown[] | undefined) ?? []).map((arn) =>
        JSON.stringify(resolver.resolve(arn)),
      ),
    });
  }
  return policies;
}

const list = (value: unknown): string[] | undefined =>
  value === undefined ? undefined : (Array.isArray(value) ? value : [value]).map(String);

function statementsOf(document: unknown): Statement[] {
  const raw = (document as { Statement?: unknown } | undefined)?.Statement;
  return (Array.isArray(raw) ? raw : raw ? [raw] : []).map((item) => {
    const statement = item as Record<string, unknown>;
    return {
      effect: statement.Effect === 'Deny' ? 'Deny' : 'Allow',
      actions: list(statement.Action),
      notActions: list(statement.NotAction),
      resources: list(statement.Resource),
      notResources: list(statement.NotResource),
      conditions: statement.Condition as Statement['conditions'],
    };
  });
}

/** Each pattern's expression, made once: every call through a gate tests several. */
const patternExpressions = new Map<string, RegExp>();

/** IAM's wildcard match: `*` any run of characters, `?` one. Actions compare without regard to case. */
function matches(pattern: string, value: string, ignoreCase = false): boolean {
  const key = `${ignoreCase ? 'i' : 's'}${pattern}`;
  let expression = patternExpressions.get(key);
  if (!expression) {
    const source = pattern
      .split('')
      .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('');
    expression = new RegExp(`^${source}$`, ignoreCase ? 'i' : '');
    patternExpressions.set(key, expression);
  }
  return expression.test(value);
}

const anyMatches = (patterns: string[], value: string, ignoreCase = false) =>
  patterns.some((pattern) => matches(pattern, value, ignoreCase));

/**
 * Whether a statement's conditions hold for the call's context. An operator this gate does not
 * know makes an `Allow` not apply and a `Deny` apply: the stricter reading either way.
 */
function conditionsHold(
  conditions: Statement['conditions'],
  context: Authorization['context'],
  effect: Statement['effect'],
): boolean {
  for (const [operator, keys] of Object.entries(conditions ?? {})) {
    const [qualifier, named] = operator.includes(':') ? operator.split(':') : [undefined, operator];
    const ifExists = named?.endsWith('IfExists') ?? false;
    const base = ifExists ? named?.slice(0, -'IfExists'.length) : named;
    for (const [key, expected] of Object.entries(keys)) {
      const wanted = list(expected) ?? [];
      const present = context[key];
      const values = present === undefined ? [] : Array.isArray(present) ? present : [present];
      const negated = base === 'StringNotEquals' || base === 'StringNotLike' || base === 'ArnNotLike';
      // IAM: an absent key satisfies ...IfExists and the negated operators, and no other.
      if (values.length === 0 && qualifier === undefined) {
        if (ifExists || negated) continue;
        return false;
      }
      const test = (value: string): boolean | undefined => {
        switch (base) {
          case 'StringEquals':
          case 'ArnEquals':
            return wanted.includes(value);
          case 'StringNotEquals':
            return !wanted.includes(value);
          case 'StringEqualsIgnoreCase':
            return wanted.some((candidate) => candidate.toLowerCase() === value.toLowerCase());
          case 'StringLike':
          case 'ArnLike':
            return anyMatches(wanted, value);
          case 'StringNotLike':
          case 'ArnNotLike':
            return !anyMatches(wanted, value);
          default:
            return undefined;
        }
      };
      const results = values.map(test);
      if (results.some((result) => result === undefined)) return effect === 'Deny';
      if (qualifier === 'ForAllValues') {
        if (!results.every(Boolean)) return false;
      } else if (qualifier === 'ForAnyValue') {
        if (!results.some(Boolean)) return false;
      } else if (values.length !== 1 || !results[0]) {
        return false;
      }
    }
  }
  return true;
}

function statementApplies(statement: Statement, authorization: Authorization, resource: string): boolean {
  const action = authorization.action;
  if (statement.actions && !anyMatches(statement.actions, action, true)) return false;
  if (statement.notActions && anyMatches(statement.notActions, action, true)) return false;
  if (statement.resources && !anyMatches(statement.resources, resource)) return false;
  if (statement.notResources && anyMatches(statement.notResources, resource)) return false;
  return conditionsHold(statement.conditions, authorization.context, statement.effect);
}

/** IAM's evaluation for one identity policy: an explicit deny wins, then any allow, else denied. */
export function isAllowed(policy: FunctionPolicy, authorization: Authorization): boolean {
  return authorization.resources.some((resource) => {
    const applying = policy.statements.filter((statement) =>
      statementApplies(statement, authorization, resource),
    );
    return (
      applying.some((statement) => statement.effect === 'Allow') &&
      !applying.some((statement) => statement.effect === 'Deny')
    );
  });
}

/** A call as it reached the gate. */
export interface Call {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const arn = (service: string, resource: string) =>
  `arn:aws:${service}:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${resource}`;

const jsonBody = (call: Call): Record<string, unknown> => {
  try {
    return JSON.parse(call.body.toString('utf8') || '{}') as Record<string, unknown>;
  } catch {
    return {};
  }
};

/** The operation of an AWS JSON protocol call (`X-Amz-Target: DynamoDB_20120810.PutItem` → `PutItem`). */
const targetOf = (call: Call) =>
  String(call.headers['x-amz-target'] ?? '')
    .split('.')
    .pop() ?? '';

/** DynamoDB: each table (or index) a call touches, with the action IAM checks there. */
function dynamoDbAuthorizations(call: Call): Authorization[] {
  const operation = targetOf(call);
  const body = jsonBody(call);
  // A table is named by its name or its ARN.
  const table = (name: unknown, index?: unknown) =>
    `${String(name).startsWith('arn:') ? String(name) : arn('dynamodb', `table/${String(name)}`)}${
      index ? `/index/${String(index)}` : ''
    }`;
  const of = (action: string, resource: string): Authorization => ({
    action: `dynamodb:${action}`,
    resources: [resource],
    context: {},
  });
  switch (operation) {
    case 'BatchGetItem':
    case 'BatchWriteItem':
      return Object.keys((body.RequestItems as object | undefined) ?? {}).map((name) =>
        of(operation, table(name)),
      );
    case 'TransactWriteItems':
      return ((body.TransactItems as Record<string, { TableName?: string }>[] | undefined) ?? []).flatMap(
        (item) =>
          Object.entries(item).map(([kind, detail]) =>
            of(kind === 'ConditionCheck' ? 'ConditionCheckItem' : `${kind}Item`, table(detail.TableName)),
          ),
      );
    case 'TransactGetItems':
      return ((body.TransactItems as { Get?: { TableName?: string } }[] | undefined) ?? []).map((item) =>
        of('GetItem', table(item.Get?.TableName)),
      );
    case 'ListTables':
      return [of(operation, '*')];
    case 'UpdateItem':
      return [
        {
          ...of(operation, table(body.TableName)),
          context: { 'dynamodb:Attributes': updatedAttributes(body) },
        },
      ];
    default:
      return [of(operation, table(body.TableName, body.IndexName))];
  }
}

/**
 * `dynamodb:Attributes` of an UpdateItem, as IAM reads it: the top-level attributes its key and
 * expressions name, so a grant limited to some attributes (`ForAllValues:StringEquals`) is held
 * to them here as in AWS.
 */
function updatedAttributes(body: Record<string, unknown>): string[] {
  const names = (body.ExpressionAttributeNames as Record<string, string> | undefined) ?? {};
  const expressions = [body.UpdateExpression, body.ConditionExpression].filter(
    (expression): expression is string => typeof expression === 'string',
  );
  const named = expressions.flatMap((expression) =>
    // A path's first part, before any `.` or `[`; values (`:x`) and functions (`name(`) are not attributes.
    [...expression.matchAll(/(?<![:\w#.])(#?[A-Za-z_][\w]*)(?![\w(])/g)]
      .map((found) => String(found[1]))
      .filter((word) => !/^(SET|REMOVE|ADD|DELETE|AND|OR|NOT|BETWEEN|IN)$/i.test(word))
      .map((word) => (word.startsWith('#') ? (names[word] ?? word) : word)),
  );
  return [...new Set([...Object.keys((body.Key as object | undefined) ?? {}), ...named])];
}

/** SQS (its JSON protocol): the queue named by the call's URL, batch calls checked as their single form. */
function sqsAuthorizations(call: Call): Authorization[] {
  const operation = targetOf(call).replace(/Batch$/, '');
  const body = jsonBody(call);
  const queueName =
    typeof body.QueueUrl === 'string' ? body.QueueUrl.split('/').pop() : String(body.QueueName ?? '*');
  return [{ action: `sqs:${operation}`, resources: [arn('sqs', String(queueName))], context: {} }];
}

/** The bare address of `Name <address>` or `address`, as the caller wrote it (IAM compares case). */
const addressOf = (value: string) => (/<([^>]+)>/.exec(value)?.[1] ?? value).trim();

/** SES v2 (a REST protocol): the operation from the method and path. */
function sesAuthorizations(call: Call): Authorization[] {
  const raw = (call.path.split('?')[0] ?? '').replace(/\/+$/, '');
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    path = raw;
  }
  const of = (
    action: string,
    resources: string[],
    context: Authorization['context'] = {},
  ): Authorization[] => [{ action: `ses:${action}`, resources, context }];
  if (call.method === 'POST' && path === '/v2/email/outbound-emails') {
    const body = jsonBody(call) as {
      FromEmailAddress?: string;
      ConfigurationSetName?: string;
      Destination?: { ToAddresses?: string[]; CcAddresses?: string[]; BccAddresses?: string[] };
      Content?: { Raw?: { Data?: string } };
    };
    const from = addressOf(body.FromEmailAddress ?? rawFrom(body.Content?.Raw?.Data) ?? '');
    const domain = from.split('@')[1] ?? '';
    const destination = body.Destination ?? {};
    const context = {
      'ses:FromAddress': from,
      'ses:Recipients': [
        ...(destination.ToAddresses ?? []),
        ...(destination.CcAddresses ?? []),
        ...(destination.BccAddresses ?? []),
      ].map(addressOf),
      'ses:ApiVersion': '2',
    };
    return [
      ...of('SendEmail', [arn('ses', `identity/${from}`), arn('ses', `identity/${domain}`)], context),
      ...(body.ConfigurationSetName
        ? of('SendEmail', [arn('ses', `configuration-set/${body.ConfigurationSetName}`)], context)
        : []),
    ];
  }
  if (call.method === 'GET' && path === '/v2/email/account') return of('GetAccount', ['*']);
  const configurationSet = /^\/v2\/email\/configuration-sets\/([^/]+)(\/sending)?$/.exec(path);
  if (configurationSet) {
    const resource = [arn('ses', `configuration-set/${configurationSet[1]}`)];
    if (configurationSet[2] && call.method === 'PUT')
      return of('PutConfigurationSetSendingOptions', resource);
    if (call.method === 'GET') return of('GetConfigurationSet', resource);
  }
  const identity = /^\/v2\/email\/identities\/([^/]+)$/.exec(path);
  if (identity && call.method === 'GET')
    return of('GetEmailIdentity', [arn('ses', `identity/${identity[1]}`)]);
  // A call this gate cannot name is held to the strictest reading: an action no policy grants.
  return of(`Unrecognized:${call.method}${path}`, ['*']);
}

/** The From header of a raw message (base64, as SES v2 takes it). */
function rawFrom(data: string | undefined): string | undefined {
  if (!data) return undefined;
  const headers =
    Buffer.from(data, 'base64')
      .toString('utf8')
      .split(/\r?\n\r?\n/)[0] ?? '';
  return /^From:\s*(.+)$/im.exec(headers)?.[1];
}

/** Secrets Manager: the secret by its id, which is its ARN or its name. */
function secretsAuthorizations(call: Call): Authorization[] {
  const body = jsonBody(call);
  const id = String(body.SecretId ?? '*');
  return [
    {
      action: `secretsmanager:${targetOf(call)}`,
      resources: [id.startsWith('arn:') ? id : arn('secretsmanager', `secret:${id}`)],
      context: {},
    },
  ];
}

/** EventBridge: PutEvents is authorized on the bus of each entry (its name or ARN; none is `default`). */
function eventsAuthorizations(call: Call): Authorization[] {
  const entries = (jsonBody(call).Entries ?? []) as { EventBusName?: unknown }[];
  const buses = new Set(
    entries.map((entry) => {
      const bus =
        typeof entry.EventBusName === 'string' && entry.EventBusName ? entry.EventBusName : 'default';
      return bus.startsWith('arn:') ? bus : arn('events', `event-bus/${bus}`);
    }),
  );
  return [...buses].map((bus) => ({ action: `events:${targetOf(call)}`, resources: [bus], context: {} }));
}

/** API Gateway's control plane: IAM names its actions by HTTP method, on the resource's path. */
function apiGatewayAuthorizations(call: Call): Authorization[] {
  const path = call.path.split('?')[0] ?? '';
  return [
    {
      action: `apigateway:${call.method}`,
      resources: [`arn:aws:apigateway:${LOCAL_REGION}::${path}`],
      context: {},
    },
  ];
}

export function authorizationsFor(service: GatedService, call: Call): Authorization[] {
  switch (service) {
    case 'dynamodb':
      return dynamoDbAuthorizations(call);
    case 'sqs':
      return sqsAuthorizations(call);
    case 'ses':
      return sesAuthorizations(call);
    case 'secretsmanager':
      return secretsAuthorizations(call);
    case 'apigateway':
      return apiGatewayAuthorizations(call);
    case 'events':
      return eventsAuthorizations(call);
  }
}

/** The access key id in a SigV4 `Authorization` header (`Credential=AKID/date/region/service/aws4_request`). */
export function accessKeyIdIn(headers: IncomingHttpHeaders): string | undefined {
  return /Credential=([^/,\s]+)\//.exec(String(headers.authorization ?? ''))?.[1];
}

/** AWS's answer to a call the caller's policy does not allow, in the service's protocol. */
function accessDenied(
  service: GatedService,
  policy: FunctionPolicy,
  authorization: Authorization,
): LocalAnswer {
  const message =
    `User: arn:aws:sts::${LOCAL_ACCOUNT}:assumed-role/${policy.roleName}/${policy.functionLogicalId} ` +
    `is not authorized to perform: ${authorization.action} on resource: ${authorization.resources[0]} ` +
    'because no identity-based policy allows the action';
  if (service === 'ses' || service === 'apigateway') {
    return {
      status: 403,
      headers: { 'content-type': 'application/json', 'x-amzn-errortype': 'AccessDeniedException' },
      body: JSON.stringify({ message }),
    };
  }
  return {
    status: service === 'sqs' ? 403 : 400,
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-query-error': 'AccessDenied;Sender' },
    body: JSON.stringify({
      __type: 'com.amazon.coral.service#AccessDeniedException',
      message,
      Message: message,
    }),
  };
}

/** A caller the gate knows nothing of: it may do nothing. */
const NOBODY: FunctionPolicy = {
  functionLogicalId: 'unknown',
  roleName: 'unknown',
  statements: [],
  unreadable: [],
};

/**
 * The gate in front of one engine: a caller that signs as a function is held to that function's
 * policy; the runtime itself (its event source pollers and set-up, standing for AWS) signs with
 * `trustedAccessKeyId` and passes; any other caller is denied everything. A denial is told to
 * `onDenied` as well, since the function may swallow it.
 */
export async function startIamGate(options: {
  service: GatedService;
  target: string;
  policies: Map<string, FunctionPolicy>;
  trustedAccessKeyId: string;
  onDenied: (line: string) => void;
  /** Shown each call the engine answered (the gate's denials are not). */
  observe?: (exchange: Exchange) => void;
}): Promise<ObservingProxy> {
  return startObservingProxy(options.target, options.observe ?? (() => undefined), (call) => {
    const accessKeyId = accessKeyIdIn(call.headers);
    if (accessKeyId === options.trustedAccessKeyId) return undefined;
    const policy = (accessKeyId ? options.policies.get(accessKeyId) : undefined) ?? {
      ...NOBODY,
      functionLogicalId: accessKeyId ?? 'anonymous',
    };
    const denied = authorizationsFor(options.service, call).find(
      (authorization) => !isAllowed(policy, authorization),
    );
    if (!denied) return undefined;
    options.onDenied(
      `${policy.functionLogicalId} is not allowed ${denied.action} on ${denied.resources.join(' or ')}`,
    );
    return accessDenied(options.service, policy, denied);
  });
}
