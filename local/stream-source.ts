import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type Shard,
  type _Record as StreamRecord,
} from '@aws-sdk/client-dynamodb-streams';
import type { InvokeResult } from './functions';
import { type FilterPattern, matchesPattern } from './triggers';

/**
 * How often a shard is read while records come (Lambda reads a stream's shards four times a
 * second), and once it has had none for `IDLE_AFTER_MS`: an idle runtime's readers then cost a
 * fraction of the CPU (theirs and DynamoDB Local's). An idle reader is woken at once by `wake()`
 * (the runtime calls it when a function writes to a table), so the first record after a lull does
 * not wait for the next poll.
 */
const POLL_MS = 200;
const IDLE_POLL_MS = 2_000;
const IDLE_AFTER_MS = 3_000;
/** The DynamoDB operations that can put records on a table's stream. */
export const TABLE_WRITE_OPERATIONS = new Set([
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'BatchWriteItem',
  'TransactWriteItems',
  'ExecuteStatement',
  'BatchExecuteStatement',
  'ExecuteTransaction',
]);

/** How often the stream is looked at for new shards. */
const SHARD_DISCOVERY_MS = 1_000;
/** Wait before a failed batch is handed over again (Lambda backs off too). */
const RETRY_DELAY_MS = 500;

export interface StreamEventSourceOptions {
  client: DynamoDBStreamsClient;
  streamArn: string;
  startingPosition: 'TRIM_HORIZON' | 'LATEST';
  batchSize: number;
  batchingWindowMs: number;
  /** Records none of these match are passed over, as Lambda's event filtering drops them. */
  filters?: FilterPattern[];
  /** The function answers `batchItemFailures`: the stream goes on after the records before the first it names. */
  reportBatchItemFailures?: boolean;
  invoke: (event: unknown) => Promise<InvokeResult>;
  log: (line: string) => void;
  /**
   * Where the mapping's position is kept between runs, as Lambda keeps an event source mapping's:
   * a restarted runtime goes on after the last record its function took, never from the start.
   */
  checkpoints?: StreamCheckpoints | undefined;
}

/** The last sequence number the function took, per shard (keyed by the stream's ARN and the shard's id). */
export interface StreamCheckpoints {
  get(shard: string): string | undefined;
  set(shard: string, sequenceNumber: string): void;
}

/**
 * Checkpoints in a JSON file (one per event source mapping, in the runtime's state folder), written
 * after each batch its function took: to a file beside it, then renamed over it, so a runtime
 * killed mid-write keeps the previous one whole. A file that cannot be read stops the start: read
 * from the start of the stream again, the function would count every record a second time.
 */
export function fileCheckpoints(file: string): StreamCheckpoints {
  let positions: Record<string, string> = {};
  if (existsSync(file)) {
    try {
      positions = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
    } catch (error) {
      throw new Error(
        `The stream position file ${file} cannot be read; remove it to read the streams from their start`,
        { cause: error },
      );
    }
  }
  return {
    get: (shard) => positions[shard],
    set(shard, sequenceNumber) {
      positions[shard] = sequenceNumber;
      writeFileSync(`${file}.next`, JSON.stringify(positions), { mode: 0o600 });
      renameSync(`${file}.next`, file);
    },
  };
}

/**
 * A DynamoDB stream event source mapping as Lambda runs one: each shard is read in order by one
 * poller, which gathers a batch (up to the batch size, or until the batching window closes) and
 * invokes the function; a failed invocation hands the same batch over again until it succeeds (the
 * shard waits meanwhile), as with unlimited retries and no bisecting. A child shard is read once
 * its parent is done. Records are those DynamoDB Local's stream keeps.
 */
export class StreamEventSource {
  private running = false;
  private discovery: Promise<void> | undefined;
  /** Each shard's reader, by shard id. */
  private readonly shards = new Map<string, Promise<void>>();
  private readonly finished = new Set<string>();
  private firstLook = true;
  private readonly stopping = new AbortController();
  /** Aborted (and replaced) by `wake()`: ends the idle readers' waits. */
  private nudge = new AbortController();

  /**
   * The table whose stream this is (its name is in the stream's ARN: `…:table/NAME/stream/…`), read
   * once: the runtime compares it with every write a function makes.
   */
  readonly tableName: string;

  constructor(private readonly options: StreamEventSourceOptions) {
    this.tableName = /:table\/([^/]+)\/stream\//.exec(options.streamArn)?.[1] ?? '';
  }

  /** Starts reading; resolves once the shards there now are open (so no later change is missed). */
  async start(): Promise<void> {
    this.running = true;
    await this.look();
    this.discovery = this.discover();
  }

  /** Stops reading and waits for the invocations under way (no wait between polls holds it up). */
  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    await this.discovery;
    await Promise.all(this.shards.values());
  }

  /**
   * Something may have been written to the table: idle shard readers read now, not at their next
   * poll (but never sooner than `POLL_MS` after their last read, so a busy table's writes cannot
   * make them poll faster than while records come).
   */
  wake(): void {
    this.nudge.abort();
    this.nudge = new AbortController();
  }

  private async discover(): Promise<void> {
    while (this.running) {
      await this.pause(SHARD_DISCOVERY_MS);
      if (this.running) await this.look();
    }
  }

  /** Opens the shards not read yet (a child only once its parent is done: its records come later). */
  private async look(): Promise<void> {
    try {
      const listed = await this.listShards();
      const ids = new Set(listed.map((shard) => shard.ShardId));
      for (const shard of listed) {
        const id = shard.ShardId as string;
        if (this.shards.has(id)) continue;
        // A parent still listed is read first, to its end (whether or not its reader started yet).
        const parent = shard.ParentShardId;
        if (parent && (ids.has(parent) || this.shards.has(parent)) && !this.finished.has(parent)) continue;
        // Shards there at the start begin where the mapping says; any found later, from their first record.
        const position = this.firstLook ? this.options.startingPosition : 'TRIM_HORIZON';
        // DynamoDB Local's LATEST iterator on a shard with no records yet never sees the records
        // that follow: LATEST is read here as "after the shard's last record now".
        const kept = this.options.checkpoints?.get(`${this.options.streamArn} ${id}`);
        const after = kept ?? (position === 'LATEST' ? await this.lastRecord(id) : undefined);
        this.shards.set(id, this.readShard(id, after));
      }
      this.firstLook = false;
    } catch (error) {
      this.fail('could not list or open shards', error);
    }
  }

  private async listShards(): Promise<Shard[]> {
    const shards: Shard[] = [];
    let start: string | undefined;
    do {
      const { StreamDescription } = await this.options.client.send(
        new DescribeStreamCommand({ StreamArn: this.options.streamArn, ExclusiveStartShardId: start }),
      );
      shards.push(...(StreamDescription?.Shards ?? []));
      start = StreamDescription?.LastEvaluatedShardId;
    } while (start);
    return shards;
  }

  /** Reads a shard from after `after` (a sequence number), or from its first record. */
  private async readShard(shardId: string, after: string | undefined): Promise<void> {
    const { client, batchSize, batchingWindowMs } = this.options;
    let iterator: string | undefined;
    // The last record read: the iterator is opened after it (again, when it is lost: DynamoDB Local restarted).
    let lastSequence = after;
    let batch: StreamRecord[] = [];
    let windowEnds = 0;
    // A failed batch is handed over again as it was, before anything after it is read.
    let failed = false;
    let closed = false;
    let lastRecordAt = Date.now();
    while (this.running) {
      if (!closed && batch.length < batchSize && !failed) {
        try {
          iterator ??= await this.openIterator(shardId, lastSequence);
          const read = await client.send(
            new GetRecordsCommand({
              ShardIterator: iterator,
              Limit: Math.min(1000, batchSize - batch.length),
            }),
          );
          const records = read.Records ?? [];
          if (records.length > 0) lastRecordAt = Date.now();
          if (batch.length === 0 && records.length > 0) windowEnds = Date.now() + batchingWindowMs;
          batch.push(...records);
          lastSequence = records.at(-1)?.dynamodb?.SequenceNumber ?? lastSequence;
          iterator = read.NextShardIterator;
          closed = iterator === undefined;
        } catch (error) {
          const trimmed = (error as Error).name === 'TrimmedDataAccessException';
          // DynamoDB Local answers so for a shard with nothing in it yet: open it again, quietly. After
          // a record read, it means the records after it are gone: read on from the oldest kept.
          if (!trimmed || lastSequence !== undefined) this.fail(`could not read shard ${shardId}`, error);
          if (trimmed) lastSequence = undefined;
          iterator = undefined;
          await this.pause(RETRY_DELAY_MS);
          continue;
        }
      }
      if (batch.length === 0) {
        if (closed) break;
        await this.pause(POLL_MS);
        if (Date.now() - lastRecordAt > IDLE_AFTER_MS)
          await this.pause(IDLE_POLL_MS - POLL_MS, this.nudge.signal);
        continue;
      }
      if (!failed && batch.length < batchSize && !closed && Date.now() < windowEnds) {
        await this.pause(Math.min(POLL_MS, windowEnds - Date.now()));
        continue;
      }
      const done = await this.deliver(batch);
      failed = done < batch.length;
      const taken = batch[done - 1]?.dynamodb?.SequenceNumber;
      if (taken) this.options.checkpoints?.set(`${this.options.streamArn} ${shardId}`, taken);
      batch = batch.slice(done);
      if (failed) await this.pause(RETRY_DELAY_MS);
    }
    this.finished.add(shardId);
  }

  private async openIterator(shardId: string, after: string | undefined): Promise<string | undefined> {
    const { ShardIterator } = await this.options.client.send(
      new GetShardIteratorCommand({
        StreamArn: this.options.streamArn,
        ShardId: shardId,
        ...(after
          ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: after }
          : { ShardIteratorType: 'TRIM_HORIZON' }),
      }),
    );
    return ShardIterator;
  }

  /** The sequence number of a shard's last record now (undefined: it has none). */
  private async lastRecord(shardId: string): Promise<string | undefined> {
    let iterator = await this.openIterator(shardId, undefined);
    let last: string | undefined;
    while (iterator) {
      let read: GetRecordsCommandOutput;
      try {
        read = await this.options.client.send(
          new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }),
        );
      } catch (error) {
        // DynamoDB Local's answer for a shard with no records.
        if ((error as Error).name === 'TrimmedDataAccessException') return last;
        throw error;
      }
      const records = read.Records ?? [];
      if (records.length === 0) return last;
      last = records.at(-1)?.dynamodb?.SequenceNumber ?? last;
      iterator = read.NextShardIterator;
    }
    return last;
  }

  /**
   * Invokes the function with a batch's records that pass the filters; answers how many of the
   * batch, from its start, are done (all, or those before the first failed record it reported).
   */
  private async deliver(batch: StreamRecord[]): Promise<number> {
    const records = batch.map((record) => this.eventRecord(record));
    const { filters = [] } = this.options;
    const passing =
      filters.length === 0
        ? records
        : records.filter((record) => filters.some((pattern) => matchesPattern(record, pattern)));
    if (passing.length === 0) return batch.length;
    const result = await this.options.invoke({ Records: passing });
    if (!result.ok) {
      this.options.log(
        `event source ${this.options.streamArn}: invocation failed, its ${batch.length} records are handed over again (${result.error.errorMessage})`,
      );
      return 0;
    }
    if (!this.options.reportBatchItemFailures) return batch.length;
    const failures =
      (result.value as { batchItemFailures?: { itemIdentifier?: unknown }[] } | null)?.batchItemFailures ??
      [];
    if (failures.length === 0) return batch.length;
    // Lambda goes on from the lowest sequence number reported; one that is not in the batch fails it all.
    const positions = failures.map((failure) =>
      batch.findIndex((record) => record.dynamodb?.SequenceNumber === failure?.itemIdentifier),
    );
    const first = positions.includes(-1) ? 0 : Math.min(...positions);
    this.options.log(
      `event source ${this.options.streamArn}: the function reported ${batch.length - first} of its ${batch.length} records failed; they are handed over again`,
    );
    return first;
  }

  private eventRecord(record: StreamRecord) {
    const created = record.dynamodb?.ApproximateCreationDateTime;
    return {
      ...record,
      dynamodb: {
        ...record.dynamodb,
        // Lambda's event carries seconds since the epoch, where the SDK hands over a Date.
        ...(created ? { ApproximateCreationDateTime: Math.floor(created.getTime() / 1000) } : {}),
      },
      eventSourceARN: this.options.streamArn,
    };
  }

  /** Waits between polls; ends at once when the source stops (or `until` is aborted). */
  private async pause(ms: number, until?: AbortSignal): Promise<void> {
    const signal = until ? AbortSignal.any([this.stopping.signal, until]) : this.stopping.signal;
    await sleep(ms, undefined, { signal }).catch(() => undefined);
  }

  private fail(what: string, error: unknown): void {
    if (!this.running) return;
    this.options.log(
      `event source ${this.options.streamArn}: ${what}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}
