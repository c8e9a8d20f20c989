import { existsSync, symlinkSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { type LocalApiGatewayKeys, startLocalApiGatewayKeys } from './api-gateway-keys';
import { loadKeyValues } from './api-keys';
import { readApiModel } from './api-model';
import {
  createTables,
  type DynamoDbLocal,
  dynamoDbClient,
  dynamoDbStreamsClient,
  LOCAL_CREDENTIALS,
  startDynamoDbLocal,
} from './dynamodb';
import { type LocalEventBus, startLocalEventBus } from './event-bus';
import { QueueEventSource } from './event-sources';
import {
  type FunctionStats,
  functionsFromTemplate,
  type InvokeResult,
  type LocalFunction,
} from './functions';
import { LocalGateway, UNSUPPORTED_SERVICE_PATH } from './gateway';
import {
  accessKeyIdOf,
  type FunctionPolicy,
  type GatedService,
  readFunctionPolicies,
  startIamGate,
} from './iam';
import { LocalMetrics, readableLogLine } from './metrics';
import type { Exchange, ObservingProxy } from './observing-proxy';
import { closeServer } from './processes';
import { type LocalSecrets, startLocalSecrets } from './secrets';
import { type LocalSes, startLocalSes } from './ses';
import { LocalEventPublishing } from './ses-events';
import { createQueues, type LocalSqs, sqsClient, startLocalSqs } from './sqs';
import { openSqsJournal } from './sqs-journal';
import { preparePrivateStateDir } from './state-dir';
import { fileCheckpoints, StreamEventSource, TABLE_WRITE_OPERATIONS } from './stream-source';
import { PROJECT_ROOT, synthesizeStack } from './synth';
import { IntrinsicResolver, LOCAL_REGION, resourcesOfType } from './template';
import { readEventSourceMappings, readSchedules, Scheduler } from './triggers';

export interface LocalRuntimeOptions {
  /** Where data, API key values and the synthesized app live (git-ignored `.local/` by default). */
  stateDir: string;
  /** The gateway's port; 0 picks a free one. */
  port: number;
  log?: (line: string) => void;
  /**
   * Shown every call an engine answered for the AWS side (functions, event source pollers), at the
   * IAM gate in front of it, before the caller gets the answer: the benchmark's request counter.
   */
  observe?: (service: LocalService, exchange: Exchange) => void;
}

/** The engines standing in for AWS services, as `observe` names them. */
export type LocalService = 'dynamodb' | 'sqs' | 'ses';

export interface LocalRuntime {
  /** The API's base URL, stage included, as `cdk deploy`'s ApiUrl output. */
  url: string;
  /** The metrics the functions printed, in Prometheus text format. */
  metricsUrl: string;
  /** Each API key: its id, value and the description the template gives it (`API key <name> (scopes: …)`). */
  apiKeys: { id: string; value: string; description?: string }[];
  dynamoDbEndpoint: string;
  /**
   * The local SES's inbox of the emails the functions sent (a web page; JSON at `/messages`, read by
   * `readInbox`). Nothing is delivered; the emails live in memory and are lost when the runtime stops.
   */
  inboxUrl: string;
  /** The local SES's API (v1 and v2), for `aws sesv2 --endpoint-url`: identities of a sandboxed account, say. */
  sesEndpoint: string;
  /** The queues SES's bounce and complaint events arrive on (an SES event document put there is acted on). */
  sesEventQueues: string[];
  /** The events the stack put on its EventBridge bus, as JSON (`?detail-type=` narrows them). */
  eventsUrl: string;
  /** The local Secrets Manager, for `aws secretsmanager --endpoint-url` (a rotation, say). */
  secretsEndpoint: string;
  /** The secrets that rotate (by name): `rotate-secret` runs the template's rotation function. */
  rotatableSecrets: string[];
  /** Invocations and time spent per function, by function name. */
  functionStats(): Map<string, FunctionStats>;
  stop(): Promise<void>;
}

/** What has been started, so that stopping (in reverse order) stops exactly that. */
interface Started {
  dynamoDb?: DynamoDbLocal;
  sqs?: LocalSqs;
  ses?: LocalSes;
  eventPublishing?: LocalEventPublishing;
  secrets?: LocalSecrets;
  apiGatewayKeys?: LocalApiGatewayKeys;
  eventBus?: LocalEventBus;
  gates?: ObservingProxy[];
  functions?: Map<string, LocalFunction>;
  server?: Server;
  eventSources?: (QueueEventSource | StreamEventSource)[];
  /** One client of DynamoDB Local's streams, for every stream event source. */
  streams?: DynamoDBStreamsClient;
  scheduler?: Scheduler;
}

/**
 * Brings the synthesized stack up on this machine: DynamoDB Local with the template's tables,
 * local SQS with its queues, a local SES that keeps what the functions send, each function in
 * worker threads, the API Gateway routes, keys and usage plans, the SQS event source mappings and
 * the scheduled rules. Everything comes from the template; nothing here knows this app's routes,
 * tables or queues.
 */
export async function startLocalRuntime(options: LocalRuntimeOptions): Promise<LocalRuntime> {
  const log = options.log ?? ((line: string) => console.log(line));
  preparePrivateStateDir(options.stateDir);
  const { template, outdir, config } = await synthesizeStack(join(options.stateDir, 'cdk.out'));
  linkNodeModules(outdir);
  const resolver = new IntrinsicResolver(template);

  const started: Started = {};
  const stop = async () => {
    await started.scheduler?.stop();
    await Promise.all((started.eventSources ?? []).map((source) => source.stop()));
    started.streams?.destroy();
    const { server } = started;
    if (server) await closeServer(server);
    await Promise.all([...(started.functions?.values() ?? [])].map((fn) => fn.close()));
    await Promise.all((started.gates ?? []).map((gate) => gate.stop()));
    started.eventPublishing?.stop();
    await started.ses?.stop();
    await started.secrets?.stop();
    await started.apiGatewayKeys?.stop();
    await started.eventBus?.stop();
    await started.sqs?.stop();
    await started.dynamoDb?.stop();
  };
  try {
    started.dynamoDb = await startDynamoDbLocal({
      dataDir: join(options.stateDir, 'dynamodb'),
      stateDir: options.stateDir,
      restartOnExit: { onRestart: (message) => log(`[dynamodb-local] ${message}`) },
      // Its start-up banner is noise; what it prints once running is worth seeing.
      onOutput: (line) => {
        if (started.dynamoDb) log(`[dynamodb-local] ${line}`);
      },
    });
    const dynamo = dynamoDbClient(started.dynamoDb.endpoint);
    await createTables(dynamo, template, resolver);
    dynamo.destroy();

    started.sqs = await startLocalSqs();

    // IAM: each function signs as itself, and a gate in front of each engine holds it to its role's
    // policy (filled in below, once the queues' ARNs resolve). The runtime's own calls (its pollers,
    // standing for AWS) pass the gates too: what watches the calls (the SQS journal, a waking stream
    // reader, `options.observe`) sits in the gate, one hop for every call.
    const policies = new Map<string, FunctionPolicy>();
    const gated = async (service: GatedService, target: string, observe?: (exchange: Exchange) => void) => {
      const gate = await startIamGate({
        service,
        target,
        policies,
        trustedAccessKeyId: LOCAL_CREDENTIALS.accessKeyId,
        onDenied: (line) => log(`[iam] AccessDenied: ${line}`),
        observe: (exchange) => {
          observe?.(exchange);
          if (service === 'dynamodb' || service === 'sqs' || service === 'ses')
            options.observe?.(service, exchange);
        },
      });
      started.gates = [...(started.gates ?? []), gate];
      return gate.endpoint;
    };

    // Local SQS forgets on restart; the journal at its gate keeps what was sent and not deleted.
    const journal = openSqsJournal({ file: join(options.stateDir, 'sqs-journal.jsonl'), log });
    const sqsGate = await gated('sqs', started.sqs.endpoint, journal.observe);
    const sqs = sqsClient(sqsGate);
    const queues = await createQueues(sqs, template, resolver, sqsGate);
    const replayed = await journal.replay(
      queues.map((queue) => queue.url),
      started.sqs.endpoint,
    );
    if (replayed > 0) log(`[sqs] ${replayed} messages the previous run left in its queues were sent again`);

    // SES's event publishing: bounces and complaints of the mailbox simulator's addresses, on the subscribed queues.
    const publishing = new LocalEventPublishing(template, resolver, { sqs, queues, log });
    started.eventPublishing = publishing;
    started.ses = await startLocalSes({
      configurationSets: publishing.configurationSets(),
      identities: resourcesOfType(template, 'AWS::SES::EmailIdentity').map(([, { Properties }]) => {
        const mailFrom = (Properties?.MailFromAttributes as { MailFromDomain?: unknown } | undefined)
          ?.MailFromDomain;
        return {
          name: String(resolver.resolve(Properties?.EmailIdentity)),
          ...(mailFrom === undefined ? {} : { mailFromDomain: String(resolver.resolve(mailFrom)) }),
        };
      }),
      onSent: (email) => publishing.sent(email),
      // An account in the sandbox sends only between verified identities; the sender is one.
      sandbox: config.sesSandbox ? { verified: config.fromAddress ? [config.fromAddress] : [] } : undefined,
    });
    // The emulator forwards what it receives when this is set: say so, as emails then leave the machine.
    if (process.env.SMTP_TRANSPORT)
      log('[ses] SMTP_TRANSPORT is set: the local SES forwards every email it receives to that SMTP server');

    let functions = new Map<string, LocalFunction>();
    const invoke = async (logicalId: string, event: unknown): Promise<InvokeResult> => {
      const fn = functions.get(logicalId);
      if (!fn) throw new Error(`No local function for ${logicalId}`);
      return fn.invoke(event);
    };
    // Before the functions: their environments name the secrets' ARNs. (A rotation runs a function:
    // the functions exist by the time one is asked for.)
    started.secrets = await startLocalSecrets({
      template,
      resolver,
      file: join(options.stateDir, 'secrets.json'),
      invoke,
    });

    // Before the functions too: they name the bus.
    started.eventBus = await startLocalEventBus({
      template,
      resolver,
      file: join(options.stateDir, 'events.jsonl'),
    });

    const model = readApiModel(template, resolver);
    const keyValues = loadKeyValues(model.apiKeys, join(options.stateDir, 'api-keys.json'));
    // What an authorizer reads keys from: API Gateway's GetApiKey, answered from the same values.
    started.apiGatewayKeys = await startLocalApiGatewayKeys(model.apiKeys, keyValues);
    const metrics = new LocalMetrics();
    const gateway = new LocalGateway({
      model,
      keyValues,
      invoke,
      onError: (line) => log(`[gateway] ${line}`),
      localRoutes: new Map([
        [
          '/_local/metrics',
          () => ({
            statusCode: 200,
            headers: { 'content-type': 'text/plain; version=0.0.4' },
            body: Buffer.from(metrics.prometheus()),
          }),
        ],
      ]),
    });
    // The gateway listens first: its address is where functions' SDKs go for services with no local stand-in.
    started.server = await gateway.listen(options.port);
    const address = started.server.address();
    const port = typeof address === 'object' && address ? address.port : options.port;

    for (const [functionLogicalId, policy] of readFunctionPolicies(template, resolver))
      policies.set(functionLogicalId, policy);
    for (const policy of policies.values()) {
      if (policy.unreadable.length > 0)
        log(
          `[iam] ${policy.functionLogicalId}: managed policies ${policy.unreadable.join(', ')} cannot be read locally and allow nothing here`,
        );
    }
    functions = functionsFromTemplate(template, resolver, {
      assemblyDir: outdir,
      baseEnvironment: {
        AWS_REGION: LOCAL_REGION,
        AWS_DEFAULT_REGION: LOCAL_REGION,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        // Every other AWS service (CloudWatch, say) answers "unsupported" locally instead of reaching AWS.
        AWS_ENDPOINT_URL: `http://127.0.0.1:${port}${UNSUPPORTED_SERVICE_PATH}`,
        // A function's write may put records on its table's stream: that stream's idle readers look
        // at once. (A byte search for the table's name: a false match costs one read.)
        AWS_ENDPOINT_URL_DYNAMODB: await gated('dynamodb', started.dynamoDb.endpoint, (exchange) => {
          if (exchange.status !== 200 || !TABLE_WRITE_OPERATIONS.has(exchange.operation)) return;
          for (const source of started.eventSources ?? [])
            if (source instanceof StreamEventSource && exchange.request.includes(source.tableName))
              source.wake();
        }),
        AWS_ENDPOINT_URL_SQS: sqsGate,
        AWS_ENDPOINT_URL_SESV2: await gated('ses', started.ses.endpoint),
        AWS_ENDPOINT_URL_SECRETS_MANAGER: await gated('secretsmanager', started.secrets.endpoint),
        AWS_ENDPOINT_URL_API_GATEWAY: await gated('apigateway', started.apiGatewayKeys.endpoint),
        AWS_ENDPOINT_URL_EVENTBRIDGE: await gated('events', started.eventBus.endpoint),
        TZ: 'UTC',
      },
      environmentOf: (logicalId) => ({ AWS_ACCESS_KEY_ID: accessKeyIdOf(logicalId) }),
      // A function that links to the API (an unsubscribe link) links to this gateway. (A queue's URL
      // already leads through the SQS gate, where the queues were created: the SQS client sends
      // each call to its queue's URL, whatever endpoint it was given.)
      rewrite: (value) =>
        value.replaceAll(
          `https://${model.restApiId}.execute-api.${LOCAL_REGION}.amazonaws.com/`,
          `http://127.0.0.1:${port}/`,
        ),
      // Metric lines are gathered for /_local/metrics; log lines are shown readably.
      onLog: (name, line) => {
        if (!metrics.record(line)) log(`[${name}] ${readableLogLine(line)}`);
      },
    });
    started.functions = functions;

    // Made at the first stream mapping, shared by the rest, destroyed at stop.
    const streams = () => {
      started.streams ??= dynamoDbStreamsClient((started.dynamoDb as DynamoDbLocal).endpoint);
      return started.streams;
    };
    started.eventSources = readEventSourceMappings(template, resolver).map((mapping) => {
      const queue = queues.find((candidate) => candidate.arn === mapping.eventSourceArn);
      if (!queue) {
        if (!mapping.eventSourceArn.includes(':table/') || !mapping.eventSourceArn.includes('/stream/'))
          throw new Error(
            `Event source ${mapping.eventSourceArn} is neither a queue nor a table stream of the template`,
          );
        return new StreamEventSource({
          ...mapping,
          streamArn: mapping.eventSourceArn,
          client: streams(),
          checkpoints: fileCheckpoints(
            join(options.stateDir, `stream-position-${mapping.functionLogicalId}.json`),
          ),
          invoke: (event) => invoke(mapping.functionLogicalId, event),
          log: (line) => log(`[event-source] ${line}`),
        });
      }
      // Lambda filters SQS messages too (and deletes those filtered out); locally only streams are filtered.
      if (mapping.filters.length > 0)
        throw new Error(
          `Event source ${mapping.eventSourceArn}: filters on a queue mapping are not run locally (only on streams)`,
        );
      return new QueueEventSource({
        ...mapping,
        client: sqs,
        queueUrl: queue.url,
        queueArn: queue.arn,
        invoke: (event) => invoke(mapping.functionLogicalId, event),
        log: (line) => log(`[event-source] ${line}`),
      });
    });
    await Promise.all(started.eventSources.map((source) => source.start()));
    started.scheduler = new Scheduler(readSchedules(template, resolver, log), invoke, log);
    started.scheduler.start();

    return {
      url: `http://127.0.0.1:${port}/${model.stageName}`,
      metricsUrl: `http://127.0.0.1:${port}/_local/metrics`,
      apiKeys: model.apiKeys.map((key) => ({
        id: key.id,
        value: keyValues.get(key.id) ?? '',
        ...(key.description === undefined ? {} : { description: key.description }),
      })),
      dynamoDbEndpoint: started.dynamoDb.endpoint,
      inboxUrl: started.ses.inboxUrl,
      sesEndpoint: started.ses.endpoint,
      sesEventQueues: publishing.queueUrls(),
      eventsUrl: started.eventBus.eventsUrl,
      secretsEndpoint: started.secrets.endpoint,
      rotatableSecrets: started.secrets.rotatable,
      functionStats: () => new Map([...functions.values()].map((fn) => [fn.name, fn.stats()])),
      stop,
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
