import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Exchange } from '../local/observing-proxy';
import type { LocalService } from '../local/runtime';
import { consumedUnits, type IndexShape, indexWriteUnits } from './capacity';

export interface OperationCount {
  calls: number;
  /** Calls whose answer carried nothing (an empty ReceiveMessage): AWS long polling makes those rare. */
  empty: number;
  writeUnits: number;
  /** Of `writeUnits`, what the writes to global secondary indexes cost. */
  indexWriteUnits: number;
  readUnits: number;
}

/**
 * Counts every call the AWS side of the local runtime makes to one engine (shown it at the IAM gate
 * in front of the engine, `observe` of the runtime's options) by operation (the `X-Amz-Target` of
 * the JSON protocol), with the capacity DynamoDB would bill for it. Counting on the wire sees every
 * call the SDKs make, retries included.
 */
export class CallCounter {
  readonly counts = new Map<string, OperationCount>();
  /** When each successful call was answered (ms, performance clock): SES's send rate is read from them. */
  readonly answeredAt: number[] = [];
  /** The engine's time for each call, by operation (see `Exchange.engineMs`). */
  readonly engineMs = new Map<string, number[]>();
  /** Each table's global secondary indexes, read once from the engine (DescribeTable). */
  private readonly indexes = new Map<string, IndexShape[]>();

  constructor(readonly service: LocalService) {}

  readonly observe = ({ operation, request, answer, status, engineMs }: Exchange): void => {
    const times = this.engineMs.get(operation) ?? [];
    times.push(engineMs);
    this.engineMs.set(operation, times);
    this.count(operation, request, answer, status);
  };

  /** The engine's median and 90th-percentile time per operation so far, in ms (see `Exchange.engineMs`). */
  engineTimes(): Record<string, { calls: number; p50: number; p90: number }> {
    return Object.fromEntries(
      [...this.engineMs].sort().map(([operation, times]) => {
        const sorted = [...times].sort((a, b) => a - b);
        const at = (quantile: number) =>
          Number((sorted[Math.floor(quantile * (sorted.length - 1))] ?? 0).toFixed(1));
        return [operation, { calls: sorted.length, p50: at(0.5), p90: at(0.9) }];
      }),
    );
  }

  reset(): void {
    this.counts.clear();
    this.answeredAt.length = 0;
    this.engineMs.clear();
  }

  /** Learns the tables' indexes from DynamoDB Local, so index writes are counted; call once the tables exist. */
  async learnIndexes(endpoint: string, tableNames: readonly string[]): Promise<void> {
    const client = new DynamoDBClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      for (const name of tableNames) {
        const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
        this.indexes.set(
          name,
          (Table?.GlobalSecondaryIndexes ?? []).map((index) => ({
            keys: (index.KeySchema ?? []).map((key) => String(key.AttributeName)),
            projection: (index.Projection?.ProjectionType ?? 'ALL') as IndexShape['projection'],
          })),
        );
      }
    } finally {
      client.destroy();
    }
  }

  private count(operation: string, requestBody: Buffer, responseBody: Buffer, status: number): void {
    const entry = this.counts.get(operation) ?? {
      calls: 0,
      empty: 0,
      writeUnits: 0,
      indexWriteUnits: 0,
      readUnits: 0,
    };
    entry.calls++;
    if (status < 300) this.answeredAt.push(performance.now());
    const parse = (buffer: Buffer) => {
      try {
        return JSON.parse(buffer.toString('utf8') || '{}') as Record<string, unknown>;
      } catch {
        return {};
      }
    };
    const response = parse(responseBody);
    if (
      this.service === 'sqs' &&
      operation === 'ReceiveMessage' &&
      !((response.Messages as unknown[] | undefined)?.length ?? 0)
    ) {
      entry.empty++;
    }
    if (this.service === 'dynamodb' && status < 500) {
      const request = parse(requestBody);
      const units = consumedUnits(operation, request, response);
      const indexUnits = indexWriteUnits(operation, request, (table) => this.indexes.get(table) ?? []);
      entry.writeUnits += units.write + indexUnits;
      entry.indexWriteUnits += indexUnits;
      entry.readUnits += units.read;
    }
    this.counts.set(operation, entry);
  }
}
