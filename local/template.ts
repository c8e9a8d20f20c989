/**
 * The small part of CloudFormation the local runtime understands: the template's shape, and the
 * intrinsic functions this app's template uses (`Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`,
 * `Fn::Select`, `Fn::Split`), resolved to local names, URLs and ARNs.
 */

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
  DependsOn?: string | string[];
}

export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, { Value: unknown; Description?: string }>;
}

export const LOCAL_ACCOUNT = '000000000000';
export const LOCAL_REGION = 'us-east-1';

/** How one resource answers `Ref` and `Fn::GetAtt` locally. */
export interface LocalIdentity {
  ref: string;
  attributes?: Record<string, string>;
}

export function resourcesOfType(template: CfnTemplate, type: string): [string, CfnResource][] {
  return Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
}

/** The logical id a `{ Ref: X }` or `{ Fn::GetAtt: [X, ...] }` points at. */
export function referencedLogicalId(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if ('Ref' in value) return String(value.Ref);
  if ('Fn::GetAtt' in value && Array.isArray(value['Fn::GetAtt'])) return String(value['Fn::GetAtt'][0]);
  return undefined;
}

/** The last path segment of a CloudFormation type, as it appears in an ARN: `AWS::SQS::Queue` → `sqs`. */
const serviceOf = (type: string) => (type.split('::')[1] ?? 'local').toLowerCase();

export class IntrinsicResolver {
  private readonly identities = new Map<string, LocalIdentity>();
  private readonly pseudo: Record<string, string> = {
    'AWS::AccountId': LOCAL_ACCOUNT,
    'AWS::Region': LOCAL_REGION,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::NoValue': '',
  };

  constructor(private readonly template: CfnTemplate) {}

  /** Engines register the identities of the resources they bring up (a table's name, a queue's URL). */
  register(logicalId: string, identity: LocalIdentity): void {
    this.identities.set(logicalId, identity);
  }

  arn(type: string, name: string): string {
    return `arn:aws:${serviceOf(type)}:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${name}`;
  }

  ref(logicalId: string): string {
    const pseudo = this.pseudo[logicalId];
    if (pseudo !== undefined) return pseudo;
    const registered = this.identities.get(logicalId);
    if (registered) return registered.ref;
    if (!this.template.Resources[logicalId]) throw new Error(`Ref to unknown resource ${logicalId}`);
    // Resources no engine brought up still get a stable name, so a value that merely mentions them resolves.
    return logicalId;
  }

  getAtt(logicalId: string, attribute: string): string {
    const resource = this.template.Resources[logicalId];
    if (!resource) throw new Error(`Fn::GetAtt of unknown resource ${logicalId}`);
    const registered = this.identities.get(logicalId)?.attributes?.[attribute];
    if (registered !== undefined) return registered;
    if (attribute === 'Arn') return this.arn(resource.Type, this.ref(logicalId));
    return `${logicalId}.${attribute}`;
  }

  resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((item) => this.resolve(item));
    if (typeof value !== 'object' || value === null) return value;
    const entries = Object.entries(value);
    const [first] = entries;
    if (entries.length === 1 && first) {
      const [key, argument] = first;
      switch (key) {
        case 'Ref':
          return this.ref(String(argument));
        case 'Fn::GetAtt': {
          const [logicalId, attribute] = Array.isArray(argument) ? argument : String(argument).split('.');
          return this.getAtt(String(logicalId), String(attribute));
        }
        case 'Fn::Join': {
          const [separator, parts] = argument as [string, unknown[]];
          return parts.map((part) => this.resolveString(part)).join(separator);
        }
        case 'Fn::Select': {
          const [index, list] = argument as [number | string, unknown];
          return (this.resolve(list) as unknown[])[Number(index)];
        }
        case 'Fn::Split': {
          const [separator, source] = argument as [string, unknown];
          return this.resolveString(source).split(separator);
        }
        case 'Fn::Sub':
          return this.sub(argument);
      }
    }
    return Object.fromEntries(entries.map(([key, item]) => [key, this.resolve(item)]));
  }

  resolveString(value: unknown): string {
    const resolved = this.resolve(value);
    if (typeof resolved !== 'string' && typeof resolved !== 'number' && typeof resolved !== 'boolean') {
      throw new Error(`Expected a string, got ${JSON.stringify(resolved)}`);
    }
    return String(resolved);
  }

  private sub(argument: unknown): string {
    const [text, variables = {}] = Array.isArray(argument) ? argument : [argument];
    const locals = variables as Record<string, unknown>;
    return String(text).replace(/\$\{([^}!][^}]*)\}/g, (_, name: string) => {
      if (name in locals) return this.resolveString(locals[name]);
      const [logicalId, attribute] = name.split('.');
      return attribute === undefined ? this.ref(name) : this.getAtt(String(logicalId), attribute);
    });
  }
}
