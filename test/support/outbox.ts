import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record as StreamRecord,
} from '@aws-sdk/client-dynamodb-streams';
import { inject } from 'vitest';
import { EventOutbox } from '../../lambdas/core/events/dynamodb/outbox';
import { dynamoDbClient, dynamoDbStreamsClient } from '../../local/dynamodb';
import { tableNamed } from './local-tables';

/** The template's outbox table on the run's DynamoDB Local, for the writers a test builds. */
export const testOutbox = () => new EventOutbox(tableNamed('DataOutbox'));

/**
 * The ids of the events the outbox's stream holds as first writes (INSERTs): what the publisher
 * would put on the bus. An event written twice under one id is one INSERT and a MODIFY; one
 * written in a transaction that failed is nothing.
 */
export async function publishableEventIds(prefix: string): Promise<string[]> {
  const endpoint = inject('dynamoDbEndpoint');
  const dynamo = dynamoDbClient(endpoint);
  const streams = dynamoDbStreamsClient(endpoint);
  try {
    const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: tableNamed('DataOutbox') }));
    const streamArn = Table?.LatestStreamArn;
    if (!streamArn) throw new Error('The outbox table has no stream');
    const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
    const records: StreamRecord[] = [];
    for (const shard of StreamDescription?.Shards ?? []) {
      let iterator = (
        await streams.send(
          new GetShardIteratorCommand({
            StreamArn: streamArn,
            ShardId: shard.ShardId,
            ShardIteratorType: 'TRIM_HORIZON',
          }),
        )
      ).ShardIterator;
      while (iterator) {
        const read = await streams
          .send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }))
          // DynamoDB Local's answer for a shard with nothing in it.
          .catch((error: Error) => {
            if (error.name === 'TrimmedDataAccessException')
              return { Records: [], NextShardIterator: undefined };
            throw error;
          });
        records.push(...(read.Records ?? []));
        // An open shard hands an iterator on forever: stop at its end for now.
        iterator = (read.Records ?? []).length > 0 ? read.NextShardIterator : undefined;
      }
    }
    return records
      .filter((record) => record.eventName === 'INSERT')
      .map((record) => String(record.dynamodb?.Keys?.event_id?.S))
      .filter((id) => id.startsWith(prefix));
  } finally {
    dynamo.destroy();
    streams.destroy();
  }
}
