import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { loadKeyValues } from './api-keys';
import { readApiModel } from './api-model';
import {
  createTables,
  type DynamoDbLocal,
  dynamoDbClient,
  LOCAL_CREDENTIALS,
  startDynamoDbLocal,
} from './dynamodb';
import { functionsFromTemplate, type LocalFunction } from './functions';
import { LocalGateway } from './gateway';
import { PROJECT_ROOT, synthesizeStack } from './synth';
import { IntrinsicResolver, LOCAL_REGION } from './template';

export interface LocalRuntimeOptions {
  /** Where data, API key values and the synthesized app live (git-ignored `.local/` by default). */
  stateDir: string;
  /** The gateway's port; 0 picks a free one. */
  port: number;
  log?: (line: string) => void;
}

export interface LocalRuntime {
  url: string;
  apiKeys: { id: string; value: string }[];
  dynamoDbEndpoint: string;
  stop(): Promise<void>;
  /** Synchronous last resort for process exit: kills the engines' process groups. */
  killNow(): void;
}

/**
 * Brings the synthesized stack up on this machine: DynamoDB Local with the template's tables, each
 * function in worker threads, and the API Gateway routes, keys and usage plans. Everything comes
 * from the template; nothing here knows this app's routes or tables.
 */
export async function startLocalRuntime(options: LocalRuntimeOptions): Promise<LocalRuntime> {
  const log = options.log ?? ((line: string) => console.log(line));
  mkdirSync(options.stateDir, { recursive: true });
  const { template, outdir } = synthesizeStack(join(options.stateDir, 'cdk.out'));
  linkNodeModules(outdir);
  const resolver = new IntrinsicResolver(template);

  const started: { dynamoDb?: DynamoDbLocal; functions?: Map<string, LocalFunction>; server?: Server } = {};
  const stop = async () => {
    const { server, functions, dynamoDb } = started;
    if (server) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await Promise.all([...(functions?.values() ?? [])].map((fn) => fn.close()));
    await dynamoDb?.stop();
  };
  try {
    started.dynamoDb = await startDynamoDbLocal({
      dataDir: join(options.stateDir, 'dynamodb'),
      stateDir: options.stateDir,
      // Its start-up banner is noise; what it prints once running is worth seeing.
      onOutput: (line) => {
        if (started.dynamoDb) log(`[dynamodb-local] ${line}`);
      },
    });
    const client = dynamoDbClient(started.dynamoDb.endpoint);
    await createTables(client, template, resolver);
    client.destroy();

    started.functions = functionsFromTemplate(template, resolver, {
      assemblyDir: outdir,
      baseEnvironment: {
        AWS_REGION: LOCAL_REGION,
        AWS_DEFAULT_REGION: LOCAL_REGION,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        AWS_ENDPOINT_URL_DYNAMODB: started.dynamoDb.endpoint,
        TZ: 'UTC',
      },
      onLog: (name, line) => log(`[${name}] ${line}`),
    });
    const functions = started.functions;

    const model = readApiModel(template, resolver);
    const keyValues = loadKeyValues(model.apiKeys, join(options.stateDir, 'api-keys.json'));
    const gateway = new LocalGateway({
      model,
      keyValues,
      invoke: async (logicalId, event) => {
        const fn = functions.get(logicalId);
        if (!fn) throw new Error(`No local function for ${logicalId}`);
        return fn.invoke(event);
      },
      onError: (message, detail) => log(`[gateway] ${message}: ${JSON.stringify(detail)}`),
    });
    started.server = await gateway.listen(options.port);
    const address = started.server.address();
    const port = typeof address === 'object' && address ? address.port : options.port;
    return {
      url: `http://127.0.0.1:${port}/${model.stageName}`,
      apiKeys: model.apiKeys.map((key) => ({ id: key.id, value: keyValues.get(key.id) ?? '' })),
      dynamoDbEndpoint: started.dynamoDb.endpoint,
      stop,
      killNow: () => started.dynamoDb?.killNow(),
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Bundles leave the AWS SDK external (Lambda provides it); a link from the cloud assembly to the
 * project's node_modules lets the same bundles find it here, wherever the state folder is.
 */
function linkNodeModules(outdir: string): void {
  const link = join(outdir, 'node_modules');
  if (!existsSync(link)) symlinkSync(join(PROJECT_ROOT, 'node_modules'), link, 'dir');
}
