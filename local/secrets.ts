import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { closeServer } from './processes';
import { type CfnTemplate, type IntrinsicResolver, resourcesOfType } from './template';

/**
 * Secrets Manager for the local runtime: each `AWS::SecretsManager::Secret` of the template gets a
 * value generated as its `GenerateSecretString` asks (once, then kept under the state folder, so
 * signed links survive a restart), and functions read it with `GetSecretValue` on 127.0.0.1.
 */
export interface LocalSecrets {
  endpoint: string;
  stop(): Promise<void>;
}

interface GenerateSecretString {
  PasswordLength?: number;
  ExcludePunctuation?: boolean;
  SecretStringTemplate?: string;
  GenerateStringKey?: string;
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const PUNCTUATION = '!#$%&()*+,-./:;<=>?@[]^_`{|}~';

/** A random string as Secrets Manager generates one (uniform over the allowed characters). */
function generate(spec: GenerateSecretString): string {
  const alphabet = spec.ExcludePunctuation ? ALPHANUMERIC : ALPHANUMERIC + PUNCTUATION;
  const length = spec.PasswordLength ?? 32;
  let value = '';
  while (value.length < length) {
    for (const byte of randomBytes(length)) {
      // Bytes past the largest multiple of the alphabet's size are dropped, so no character is likelier.
      if (byte < 256 - (256 % alphabet.length) && value.length < length)
        value += alphabet[byte % alphabet.length];
    }
  }
  if (spec.SecretStringTemplate && spec.GenerateStringKey) {
    return JSON.stringify({ ...JSON.parse(spec.SecretStringTemplate), [spec.GenerateStringKey]: value });
  }
  return value;
}

export async function startLocalSecrets(options: {
  template: CfnTemplate;
  resolver: IntrinsicResolver;
  /** Where generated values are kept (mode 0600). */
  file: string;
}): Promise<LocalSecrets> {
  const stored: Record<string, string> = existsSync(options.file)
    ? (JSON.parse(readFileSync(options.file, 'utf8')) as Record<string, string>)
    : {};
  const byArn = new Map<string, { name: string; value: string }>();
  for (const [logicalId, resource] of resourcesOfType(options.template, 'AWS::SecretsManager::Secret')) {
    const properties = resource.Properties ?? {};
    const value =
      stored[logicalId] ??
      (typeof properties.SecretString === 'string'
        ? properties.SecretString
        : generate((properties.GenerateSecretString ?? {}) as GenerateSecretString));
    stored[logicalId] = value;
    const arn = options.resolver.arn(resource.Type, `secret:${logicalId}`);
    // `Ref` of a secret is its ARN, in AWS as here.
    options.resolver.register(logicalId, { ref: arn });
    byArn.set(arn, { name: logicalId, value });
  }
  writeFileSync(options.file, JSON.stringify(stored, null, 2), { mode: 0o600 });
  // The mode above applies only to a new file.
  chmodSync(options.file, 0o600);

  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const answer = (status: number, body: unknown) => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        response.end(JSON.stringify(body));
      };
      const target = String(request.headers['x-amz-target'] ?? '');
      if (target !== 'secretsmanager.GetSecretValue') {
        answer(400, {
          __type: 'UnsupportedOperation',
          message: `${target || 'This operation'} is not supported locally`,
        });
        return;
      }
      let secretId = '';
      try {
        secretId = String(
          (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { SecretId?: unknown }).SecretId ?? '',
        );
      } catch {
        answer(400, { __type: 'InvalidRequestException', message: 'The request body is not JSON' });
        return;
      }
      const found = byArn.get(secretId) ?? [...byArn.values()].find((secret) => secret.name === secretId);
      if (!found) {
        answer(400, {
          __type: 'ResourceNotFoundException',
          message: `Secrets Manager can't find the specified secret.`,
        });
        return;
      }
      const arn = [...byArn].find(([, secret]) => secret === found)?.[0];
      answer(200, {
        ARN: arn,
        Name: found.name,
        SecretString: found.value,
        VersionId: 'local',
        VersionStages: ['AWSCURRENT'],
        CreatedDate: 0,
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => closeServer(server) };
}
