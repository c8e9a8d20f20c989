import type { Server } from 'node:http';
import { CreateQueueCommand, SetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { createSqsServer } from 'local-aws-sqs';
import { LOCAL_CREDENTIALS } from './dynamodb';
import { closeServer, listeningPort } from './processes';
import {
  type CfnTemplate,
  type IntrinsicResolver,
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  resourcesOfType,
} from './template';

export interface LocalSqs {
  endpoint: string;
  stop(): Promise<void>;
}

export interface LocalQueue {
  logicalId: string;
  name: string;
  url: string;
  arn: string;
}

/** local-aws-sqs: an in-process SQS speaking the SDK's JSON protocol. Its queues live in memory. */
export async function startLocalSqs(): Promise<LocalSqs> {
  const server: Server = await createSqsServer({
    port: 0,
    hostname: '127.0.0.1',
    accountId: LOCAL_ACCOUNT,
    region: LOCAL_REGION,
    // Queues are made anew at each start; AWS's 60-second wait before reusing a name would only slow that.
    emulateQueueCreationLifecycle: false,
  });
  const port = listeningPort(server, 'Local SQS');
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () => closeServer(server),
  };
}

export function sqsClient(endpoint: string): SQSClient {
  return new SQSClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
}

/** The queue attributes of a template that local-aws-sqs understands. */
const SUPPORTED_ATTRIBUTES = [
  'VisibilityTimeout',
  'MessageRetentionPeriod',
  'DelaySeconds',
  'MaximumMessageSize',
  'ReceiveMessageWaitTimeSeconds',
];

/**
 * Creates every `AWS::SQS::Queue` of the template, then sets redrive policies (a dead-letter queue
 * must exist before a queue can name it). Registers each queue's URL, ARN and name with the resolver.
 */
export async function createQueues(
  client: SQSClient,
  template: CfnTemplate,
  resolver: IntrinsicResolver,
  /** The endpoint the AWS side reaches SQS at, when it is not the server's own (a proxy in between). */
  publicEndpoint?: string,
): Promise<LocalQueue[]> {
  const queues: (LocalQueue & { properties: Record<string, unknown> })[] = [];
  for (const [logicalId, resource] of resourcesOfType(template, 'AWS::SQS::Queue')) {
    const properties = (resource.Properties ?? {}) as Record<string, unknown>;
    const name = typeof properties.QueueName === 'string' ? properties.QueueName : logicalId;
    const attributes = Object.fromEntries(
      SUPPORTED_ATTRIBUTES.filter((key) => properties[key] !== undefined).map((key) => [
        key,
        String(properties[key]),
      ]),
    );
    const { QueueUrl } = await client.send(
      new CreateQueueCommand({ QueueName: name, Attributes: attributes }),
    );
    if (!QueueUrl) throw new Error(`Local SQS did not create ${name}`);
    // The SDK sends SQS calls to the host of the queue URL, so the URL must name the public endpoint.
    const url = publicEndpoint ? `${publicEndpoint}${new URL(QueueUrl).pathname}` : QueueUrl;
    const arn = `arn:aws:sqs:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${name}`;
    resolver.register(logicalId, { ref: url, attributes: { Arn: arn, QueueName: name, QueueUrl: url } });
    queues.push({ logicalId, name, url, arn, properties });
  }
  for (const queue of queues) {
    const redrive = queue.properties.RedrivePolicy;
    if (!redrive) continue;
    await client.send(
      new SetQueueAttributesCommand({
        QueueUrl: queue.url,
        Attributes: { RedrivePolicy: JSON.stringify(resolver.resolve(redrive)) },
      }),
    );
  }
  return queues.map(({ properties: _, ...queue }) => queue);
}
