import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Token, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, LoggingFormat, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { type QueueBinding, TABLE, type TableBinding } from '../../lambdas/core/bindings';
import { SETTING, type Setting, settingProblem } from '../../lambdas/core/settings';
import { BUNDLES_BY_INPUTS_CONTEXT, bundleFingerprint } from '../bundle-fingerprint';

const LAMBDAS_DIR = fileURLToPath(new URL('../../lambdas/', import.meta.url));

export type DynamoDbAction = `dynamodb:${string}`;

/** What reading, and writing, a table or queue under a customer managed key needs of the key. */
const KEY_READS = ['kms:Decrypt', 'kms:DescribeKey'];
const KEY_WRITES = [...KEY_READS, 'kms:Encrypt', 'kms:GenerateDataKey'];

/** The table actions that write an item (and so encrypt it, under a customer managed key). */
const TABLE_WRITES = new Set<string>([
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:TransactWriteItems',
]);
export type SqsAction = 'sqs:SendMessage' | 'sqs:GetQueueAttributes' | 'sqs:ChangeMessageVisibility';

const NO_DLQ_REASONS = {
  api: 'Invoked synchronously by API Gateway; errors return to the client, a dead-letter queue applies only to asynchronous invocations.',
  queue:
    'Invoked by an SQS event source mapping: failed messages return to the queue and reach its dead-letter queue.',
  schedule:
    'Invoked on a schedule; each run does all outstanding work, so a failed run is covered by the next one.',
  stream:
    'Invoked by a DynamoDB stream event source mapping: a failed batch is retried from the same record, a dead-letter queue applies only to asynchronous invocations.',
  rotation:
    'Invoked by Secrets Manager for each step of a rotation: a failed step leaves the new version pending and the current one in use, and the next rotation (scheduled or asked for) tries again.',
  cloudformation:
    'Invoked by CloudFormation as a custom resource: a failure is answered to CloudFormation, which fails and rolls back the deployment.',
} as const;

export interface ProjectFunctionProps {
  /** The handler module, relative to `lambdas/` (for example `api/create-nonprofit.ts`); it exports `handler`. */
  entry: string;
  description: string;
  timeout?: Duration;
  memorySize?: number;
}

/**
 * Every function of the project, with its defaults fixed once: Node 24 on arm64, X-Ray tracing,
 * JSON logs into its own log group with a retention, and an ESM bundle with source maps in which
 * the AWS SDK stays external (the runtime provides it). Its role starts empty but for writing its
 * own logs and traces; each use adds exactly the actions the code calls.
 */
export class ProjectFunction extends NodejsFunction {
  /** The handler module, relative to `lambdas/`. */
  readonly entry: string;

  constructor(scope: Construct, id: string, props: ProjectFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // An own role instead of the managed AWSLambdaBasicExecutionRole, which may write to any log group.
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs ${props.description}`,
    });
    logGroup.grantWrite(role);
    super(scope, id, {
      entry: `${LAMBDAS_DIR}${props.entry}`,
      handler: 'handler',
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(10),
      tracing: Tracing.ACTIVE,
      role,
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      environment: { NODE_OPTIONS: '--enable-source-maps' },
      bundling: {
        // Locally, named by its inputs rather than its output: a synthesis whose output folder
        // already holds this bundle skips esbuild (how the runtime reuses bundles across starts).
        ...(scope.node.tryGetContext(BUNDLES_BY_INPUTS_CONTEXT) === true
          ? { assetHash: bundleFingerprint() }
          : {}),
        format: OutputFormat.ESM,
        target: 'node24',
        minify: true,
        logLevel: LogLevel.WARNING,
        sourceMap: true,
        mainFields: ['module', 'main'],
        externalModules: ['@aws-sdk/*'],
        // Bundled CommonJS dependencies may still call require() for Node built-ins.
        banner:
          "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      },
    });
    this.entry = props.entry;
    Validations.of(role).acknowledge({
      id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
      reason: 'X-Ray PutTraceSegments and PutTelemetryRecords support no resource-level permissions.',
    });
  }

  /**
   * Lets the function tell the facts it writes (core/events): a put in the outbox, in the same
   * transaction as the write of the fact.
   */
  tellsEvents(outbox: ITable): this {
    return this.bindTable(TABLE.outbox, outbox, ['dynamodb:PutItem']);
  }

  /**
   * Lets the function record the changes it makes in the audit trail (core/audit): `PutItem` only,
   * so no function can change or remove a record; the retention each record is written with.
   */
  keepsAudit(audit: ITable, retentionDays: number): this {
    return this.bindTable(TABLE.audit, audit, ['dynamodb:PutItem']).setting(
      SETTING.auditRetentionDays,
      String(retentionDays),
    );
  }

  /**
   * Lets the function tell an erased address (core/people): the address key read, and the erased
   * keys' records read (a door that stores the key in the address's place, a suppression that
   * finds the address erased already and stores nothing).
   */
  knowsErased(erased: { suppressions: ITable; addressKey: ISecret }): this {
    return this.bindTable(TABLE.suppressions, erased.suppressions, ['dynamodb:BatchGetItem']).bindSecret(
      SETTING.addressKeySecretArn,
      erased.addressKey,
    );
  }

  /**
   * Lets the function suppress again an erased address that comes back in (a registry entry, a cc;
   * core/people): the address key read, the erased keys' records read, and the address's own
   * suppression written (read first, audited) when one was erased.
   */
  remembersErased(
    erased: { suppressions: ITable; addressKey: ISecret; audit: ITable },
    auditRetentionDays: number,
  ): this {
    return this.bindTable(TABLE.suppressions, erased.suppressions, [
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
    ])
      .bindSecret(SETTING.addressKeySecretArn, erased.addressKey)
      .keepsAudit(erased.audit, auditRetentionDays);
  }

  /**
   * Binds a table: sets the variable its adapter reads (see `lambdas/core/bindings.ts`) and grants
   * exactly the actions the code calls: `actions` on the table, `indexes.actions` on the named
   * indexes only (never `index/*`); what the code does to an index it is not granted on the table.
   * Variable and grant are set together, so a function never holds one without the other.
   */

  bindTable(
    variable: TableBinding,
    table: ITable,
    actions: readonly DynamoDbAction[],
    indexes?: { names: readonly string[]; actions: readonly DynamoDbAction[] },
  ): this {
    this.addEnvironment(variable, table.tableName);
    if (actions.length > 0) {
      this.addToRolePolicy(new PolicyStatement({ actions: [...actions], resources: [table.tableArn] }));
    }
    // A table under the owner's key: reads need the key to decrypt, writes to encrypt as well (named
    // actions: CDK's grantEncryptDecrypt holds wildcards).
    const all = [...actions, ...(indexes?.actions ?? [])];
    if (table.encryptionKey && all.length > 0)
      table.encryptionKey.grant(
        this,
        ...(all.some((action) => TABLE_WRITES.has(action)) ? KEY_WRITES : KEY_READS),
      );
    if (indexes) {
      this.addToRolePolicy(
        new PolicyStatement({
          actions: [...indexes.actions],
          resources: indexes.names.map((index) => `${table.tableArn}/index/${index}`),
        }),
      );
    }
    return this;
  }

  /** Binds a queue: sets the variable holding its URL and grants exactly the actions the code calls. */
  bindQueue(variable: QueueBinding, queue: IQueue, actions: readonly SqsAction[]): this {
    this.addEnvironment(variable, queue.queueUrl);
    queue.grant(this, ...actions);
    // A producer of a queue under the owner's key makes (and reads) its data keys; reading a queue's
    // attributes or changing a message's visibility needs no key.
    if (queue.encryptionMasterKey && actions.includes('sqs:SendMessage'))
      queue.encryptionMasterKey.grant(this, 'kms:GenerateDataKey', 'kms:Decrypt');
    return this;
  }

  /**
   * Sets a plain setting (a value, not a resource) through its declaration in
   * `lambdas/core/settings.ts`, which the handler reads too: a value the handler would refuse fails
   * synthesis here, naming the function and the variable. Values only known at deployment
   * (CloudFormation tokens) are checked by the handler at cold start.
   */
  setting(declared: Setting, value: string): this {
    const problem = Token.isUnresolved(value) ? undefined : settingProblem(declared, value);
    if (problem) {
      throw new Error(
        `${this.node.path}: ${declared.variable}=${JSON.stringify(value)} is invalid: ${problem}`,
      );
    }
    this.addEnvironment(declared.variable, value);
    return this;
  }

  /** Binds a secret: sets the setting naming its ARN and grants reading it, together. */
  bindSecret(declared: Setting, secret: ISecret): this {
    this.setting(declared, secret.secretArn);
    secret.grantRead(this);
    return this;
  }

  /**
   * Acknowledges cdk-nag's "no dead-letter target" for how this function is invoked: a DLQ on a
   * function catches failed asynchronous invocations only, and none of these is one that needs it.
   */
  acknowledgeNoDeadLetterTarget(invokedBy: keyof typeof NO_DLQ_REASONS): this {
    Validations.of(this).acknowledge({
      id: 'Serverless::Serverless-LambdaDLQ',
      reason: NO_DLQ_REASONS[invokedBy],
    });
    return this;
  }
}
