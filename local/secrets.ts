import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { InvokeResult } from './functions';
import { closeServer } from './processes';
import { type CfnTemplate, type IntrinsicResolver, resourcesOfType } from './template';

/**
 * Secrets Manager for the local runtime. Each `AWS::SecretsManager::Secret` of the template gets a
 * value generated as its `GenerateSecretString` asks (once, then kept under the state folder, so
 * sealed links survive a restart). Versions and staging labels behave as in Secrets Manager, and a
 * secret with an `AWS::SecretsManager::RotationSchedule` rotates on `RotateSecret` by running the
 * template's rotation function through its four steps, as Secrets Manager would:
 * `aws secretsmanager rotate-secret --endpoint-url <Secrets> --secret-id <name>`.
 *
 * Unlike AWS: `RotateSecret` answers once the rotation has finished (or failed, as a 400 naming the
 * step), and nothing rotates on the schedule (a local runtime does not live for 30 days).
 */
export interface LocalSecrets {
  endpoint: string;
  /** The names (here, logical ids) of the secrets that have a rotation function. */
  rotatable: string[];
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
function randomPassword(spec: { PasswordLength?: number; ExcludePunctuation?: boolean }): string {
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
  return value;
}

function generate(spec: GenerateSecretString): string {
  const value = randomPassword(spec);
  if (spec.SecretStringTemplate && spec.GenerateStringKey) {
    return JSON.stringify({ ...JSON.parse(spec.SecretStringTemplate), [spec.GenerateStringKey]: value });
  }
  return value;
}

/** One version of a secret: a rotation's pending version has stages before it has a value. */
interface Version {
  id: string;
  value?: string;
  stages: string[];
  created: number;
}

interface LocalSecret {
  logicalId: string;
  arn: string;
  versions: Version[];
  /** The function of the template's rotation schedule, if the secret has one. */
  rotationFunction?: string;
  rotationDays?: number;
  lastRotated?: number;
  /** Set while a rotation runs: a second one waits for none, it is refused (as in AWS). */
  rotating?: boolean;
}

/** What the state folder keeps of each secret (a bare string: a value kept by an earlier version). */
type Stored = Record<string, string | { versions: Version[]; lastRotated?: number }>;

class SecretsError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const notFound = (message: string) => new SecretsError('ResourceNotFoundException', message);
const invalid = (message: string) => new SecretsError('InvalidParameterException', message);

/** Moves a staging label to a version, as Secrets Manager does: moving AWSCURRENT makes the version it leaves AWSPREVIOUS. */
function stage(secret: LocalSecret, label: string, to: Version): void {
  const from = secret.versions.find((version) => version !== to && version.stages.includes(label));
  for (const version of secret.versions) version.stages = version.stages.filter((name) => name !== label);
  to.stages.push(label);
  if (label === 'AWSCURRENT' && from) stage(secret, 'AWSPREVIOUS', from);
  // A version with no label is deprecated: Secrets Manager removes it in time, here at once.
  secret.versions = secret.versions.filter((version) => version.stages.length > 0);
}

export async function startLocalSecrets(options: {
  template: CfnTemplate;
  resolver: IntrinsicResolver;
  /** Where versions are kept (mode 0600). */
  file: string;
  /** Runs a function of the template (a rotation function's steps). */
  invoke: (logicalId: string, event: unknown) => Promise<InvokeResult>;
}): Promise<LocalSecrets> {
  const stored: Stored = existsSync(options.file)
    ? (JSON.parse(readFileSync(options.file, 'utf8')) as Stored)
    : {};
  const secrets: LocalSecret[] = [];
  for (const [logicalId, resource] of resourcesOfType(options.template, 'AWS::SecretsManager::Secret')) {
    const properties = resource.Properties ?? {};
    const kept = stored[logicalId];
    const arn = options.resolver.arn(resource.Type, `secret:${logicalId}`);
    // `Ref` of a secret is its ARN, in AWS as here.
    options.resolver.register(logicalId, { ref: arn });
    const first = (value: string): Version => ({
      id: randomUUID(),
      value,
      stages: ['AWSCURRENT'],
      created: Date.now(),
    });
    secrets.push({
      logicalId,
      arn,
      ...(typeof kept === 'object' && kept !== null && Array.isArray(kept.versions)
        ? kept
        : {
            versions: [
              first(
                (typeof kept === 'string' ? kept : undefined) ??
                  (typeof properties.SecretString === 'string'
                    ? properties.SecretString
                    : generate((properties.GenerateSecretString ?? {}) as GenerateSecretString)),
              ),
            ],
          }),
    });
  }
  for (const [, resource] of resourcesOfType(options.template, 'AWS::SecretsManager::RotationSchedule')) {
    const properties = resource.Properties ?? {};
    const secretRef = (properties.SecretId as { Ref?: string } | undefined)?.Ref;
    const functionRef = (properties.RotationLambdaARN as { 'Fn::GetAtt'?: [string, string] } | undefined)?.[
      'Fn::GetAtt'
    ]?.[0];
    const secret = secrets.find((candidate) => candidate.logicalId === secretRef);
    if (!secret || !functionRef)
      throw new Error(
        'A rotation schedule must name a secret of the template (Ref) and a function of it (GetAtt Arn)',
      );
    secret.rotationFunction = functionRef;
    const rate = /^rate\((\d+) days?\)$/.exec(
      String(
        (properties.RotationRules as { ScheduleExpression?: unknown } | undefined)?.ScheduleExpression ?? '',
      ),
    );
    if (rate?.[1]) secret.rotationDays = Number(rate[1]);
  }
  const save = () => {
    const out: Stored = {};
    for (const secret of secrets)
      out[secret.logicalId] = {
        versions: secret.versions,
        ...(secret.lastRotated === undefined ? {} : { lastRotated: secret.lastRotated }),
      };
    writeFileSync(options.file, JSON.stringify(out, null, 2), { mode: 0o600 });
    // The mode above applies only to a new file.
    chmodSync(options.file, 0o600);
  };
  save();

  const find = (id: unknown): LocalSecret => {
    const found = secrets.find((secret) => secret.arn === id || secret.logicalId === id);
    if (!found) throw notFound("Secrets Manager can't find the specified secret.");
    return found;
  };
  const versionById = (secret: LocalSecret, id: unknown): Version => {
    const version = secret.versions.find((candidate) => candidate.id === id);
    if (!version)
      throw notFound(`Secrets Manager can't find the specified secret value for VersionId: ${String(id)}`);
    return version;
  };
  const stagesById = (secret: LocalSecret) =>
    Object.fromEntries(secret.versions.map((version) => [version.id, [...version.stages]]));

  const rotate = async (secret: LocalSecret, requested: unknown): Promise<string> => {
    if (!secret.rotationFunction)
      throw new SecretsError('InvalidRequestException', `${secret.logicalId} has no rotation function`);
    if (secret.rotating)
      throw new SecretsError(
        'InvalidRequestException',
        "A previous rotation isn't complete. That rotation will be reattempted.",
      );
    secret.rotating = true;
    try {
      return await runRotation(secret, secret.rotationFunction, requested);
    } finally {
      secret.rotating = false;
    }
  };

  const runRotation = async (
    secret: LocalSecret,
    rotationFunction: string,
    requested: unknown,
  ): Promise<string> => {
    // A request sent again (an SDK's retry) for a rotation already done: the same answer.
    if (
      typeof requested === 'string' &&
      secret.versions.some((version) => version.id === requested && version.stages.includes('AWSCURRENT'))
    )
      return requested;
    // A finished rotation whose version kept its AWSPENDING label is no rotation to finish.
    for (const version of secret.versions)
      if (version.stages.includes('AWSCURRENT'))
        version.stages = version.stages.filter((name) => name !== 'AWSPENDING');
    // A rotation that failed left its pending version: it is tried again, as in AWS.
    let pending = secret.versions.find((version) => version.stages.includes('AWSPENDING'));
    if (!pending) {
      pending = {
        id: typeof requested === 'string' ? requested : randomUUID(),
        stages: ['AWSPENDING'],
        created: Date.now(),
      };
      secret.versions.push(pending);
      save();
    }
    for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) {
      const result = await options.invoke(rotationFunction, {
        SecretId: secret.arn,
        ClientRequestToken: pending.id,
        Step: step,
      });
      if (!result.ok)
        throw new SecretsError(
          'InvalidRequestException',
          `Rotation failed at ${step}: ${result.error.errorType}: ${result.error.errorMessage}`,
        );
    }
    const done = secret.versions.find((version) => version.id === pending.id);
    if (!done?.stages.includes('AWSCURRENT'))
      throw new SecretsError(
        'InvalidRequestException',
        'The rotation function finished without making its version current',
      );
    done.stages = done.stages.filter((name) => name !== 'AWSPENDING');
    secret.lastRotated = Date.now();
    save();
    return pending.id;
  };

  const operations: Record<string, (body: Record<string, unknown>) => unknown> = {
    GetSecretValue: (body) => {
      const secret = find(body.SecretId);
      const label = typeof body.VersionStage === 'string' ? body.VersionStage : undefined;
      const version =
        body.VersionId === undefined
          ? secret.versions.find((candidate) => candidate.stages.includes(label ?? 'AWSCURRENT'))
          : versionById(secret, body.VersionId);
      if (!version || version.value === undefined || (label && !version.stages.includes(label)))
        throw notFound(
          `Secrets Manager can't find the specified secret value for ${body.VersionId === undefined ? `staging label: ${label ?? 'AWSCURRENT'}` : `VersionId: ${String(body.VersionId)}`}`,
        );
      return {
        ARN: secret.arn,
        Name: secret.logicalId,
        SecretString: version.value,
        VersionId: version.id,
        VersionStages: version.stages,
        CreatedDate: version.created / 1000,
      };
    },
    DescribeSecret: (body) => {
      const secret = find(body.SecretId);
      return {
        ARN: secret.arn,
        Name: secret.logicalId,
        RotationEnabled: secret.rotationFunction !== undefined,
        ...(secret.rotationFunction
          ? {
              RotationLambdaARN: options.resolver.resolve({ 'Fn::GetAtt': [secret.rotationFunction, 'Arn'] }),
              RotationRules: secret.rotationDays ? { AutomaticallyAfterDays: secret.rotationDays } : {},
            }
          : {}),
        ...(secret.lastRotated === undefined ? {} : { LastRotatedDate: secret.lastRotated / 1000 }),
        VersionIdsToStages: stagesById(secret),
      };
    },
    GetRandomPassword: (body) => ({
      RandomPassword: randomPassword({
        PasswordLength: typeof body.PasswordLength === 'number' ? body.PasswordLength : 32,
        ExcludePunctuation: body.ExcludePunctuation === true,
      }),
    }),
    PutSecretValue: (body) => {
      const secret = find(body.SecretId);
      if (typeof body.SecretString !== 'string' || body.SecretString === '')
        throw invalid('SecretString is required (SecretBinary is not supported locally)');
      const id = typeof body.ClientRequestToken === 'string' ? body.ClientRequestToken : randomUUID();
      let version = secret.versions.find((candidate) => candidate.id === id);
      if (version?.value !== undefined && version.value !== body.SecretString)
        throw new SecretsError('ResourceExistsException', `A version with VersionId ${id} already exists`);
      if (!version) {
        version = { id, stages: [], created: Date.now() };
        secret.versions.push(version);
      }
      version.value = body.SecretString;
      const labels = Array.isArray(body.VersionStages) ? body.VersionStages.map(String) : ['AWSCURRENT'];
      for (const label of labels) if (!version.stages.includes(label)) stage(secret, label, version);
      save();
      return {
        ARN: secret.arn,
        Name: secret.logicalId,
        VersionId: version.id,
        VersionStages: version.stages,
      };
    },
    UpdateSecretVersionStage: (body) => {
      const secret = find(body.SecretId);
      const label = String(body.VersionStage ?? '');
      if (!label) throw invalid('VersionStage is required');
      const holder = secret.versions.find((version) => version.stages.includes(label));
      if (holder && body.RemoveFromVersionId !== undefined && holder.id !== body.RemoveFromVersionId)
        throw invalid(
          `The staging label ${label} is attached to version ${holder.id}, not ${String(body.RemoveFromVersionId)}`,
        );
      if (body.MoveToVersionId === undefined) {
        if (holder && holder.id === body.RemoveFromVersionId) {
          holder.stages = holder.stages.filter((name) => name !== label);
          secret.versions = secret.versions.filter((version) => version.stages.length > 0);
        }
      } else {
        const to = versionById(secret, body.MoveToVersionId);
        if (holder && holder !== to && body.RemoveFromVersionId === undefined)
          throw invalid(
            `The staging label ${label} is attached to version ${holder.id}: name it in RemoveFromVersionId`,
          );
        if (holder !== to) stage(secret, label, to);
      }
      save();
      return { ARN: secret.arn, Name: secret.logicalId };
    },
    RotateSecret: async (body) => {
      const secret = find(body.SecretId);
      const versionId = await rotate(secret, body.ClientRequestToken);
      return { ARN: secret.arn, Name: secret.logicalId, VersionId: versionId };
    },
  };

  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const answer = (status: number, body: unknown) => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        response.end(JSON.stringify(body));
      };
      const target = String(request.headers['x-amz-target'] ?? '');
      const operation = operations[target.replace(/^secretsmanager\./, '')];
      if (!target.startsWith('secretsmanager.') || !operation) {
        answer(400, {
          __type: 'UnsupportedOperation',
          message: `${target || 'This operation'} is not supported locally`,
        });
        return;
      }
      let body: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
          throw new Error('not an object');
        body = parsed as Record<string, unknown>;
      } catch {
        answer(400, { __type: 'InvalidRequestException', message: 'The request body is not a JSON object' });
        return;
      }
      Promise.resolve()
        .then(() => operation(body))
        .then(
          (result) => answer(200, result),
          (error: unknown) =>
            error instanceof SecretsError
              ? answer(400, { __type: error.type, message: error.message })
              : answer(500, { __type: 'InternalServiceError', message: String(error) }),
        );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    rotatable: secrets.filter((secret) => secret.rotationFunction).map((secret) => secret.logicalId),
    stop: () => closeServer(server),
  };
}
