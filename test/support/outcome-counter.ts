import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { inject } from 'vitest';
import { DynamoJobStore } from '../../lambdas/core/jobs/dynamodb/dynamo-job-store';
import { DynamoOutcomeCounts } from '../../lambdas/core/jobs/dynamodb/dynamo-outcome-counts';
import { makeCountOutcomes } from '../../lambdas/worker/count-outcomes';
import { dynamoDbClient, dynamoDbStreamsClient } from '../../local/dynamodb';
import { StreamEventSource } from '../../local/stream-source';
import { asInvocation, lambdaContext } from './api-events';
import { tableNamed } from './local-tables';

/**
 * The jobs' counters as the stack keeps them: the deliveries table's stream, read from now on, feeds
 * the real counting handler. At most one per test file at a time (the run's DynamoDB Local is
 * shared, and two readers of one stream would each count it); stop it when the file is done.
 */
export async function startOutcomeCounter({ windowMs = 0 }: { windowMs?: number } = {}) {
  const endpoint = inject('dynamoDbEndpoint');
  const raw = dynamoDbClient(endpoint);
  const streams = dynamoDbStreamsClient(endpoint);
  const client = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
  const jobsTable = tableNamed('DataJobs');
  const { Table } = await raw.send(new DescribeTableCommand({ TableName: tableNamed('DataDeliveries') }));
  if (!Table?.LatestStreamArn) throw new Error('The deliveries table has no stream');
  const handler = makeCountOutcomes({
    counts: new DynamoOutcomeCounts({ client, jobsTable }),
    jobs: new DynamoJobStore({ client, tableName: jobsTable }),
    log: () => undefined,
  });
  const failures: string[] = [];
  const source = new StreamEventSource({
    client: streams,
    streamArn: Table.LatestStreamArn,
    startingPosition: 'LATEST',
    batchSize: 1000,
    batchingWindowMs: windowMs,
    invoke: (event) => asInvocation(() => handler(event as DynamoDBStreamEvent, lambdaContext)),
    log: (line) => failures.push(line),
  });
  await source.start();
  return {
    /** What the source logged (failed invocations, unreadable shards): a test may assert it is empty. */
    failures,
    async stop() {
      await source.stop();
      streams.destroy();
      raw.destroy();
    },
  };
}
