import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { InvokeResult } from './functions';
import { LOCAL_REGION } from './template';

/**
 * An idle queue is long-polled as Lambda's pollers do (20 s), for one message: local-aws-sqs answers
 * a long poll as soon as it holds as many messages as asked for, else only when the wait is over,
 * so asking for one answers as soon as one arrives. The rest of a batch is gathered with short
 * polls, `GATHER_POLL_MS` apart, while the batching window is open.
 */
const LONG_POLL_SECONDS = 20;
const GATHER_POLL_MS = 150;

export interface QueueEventSourceOptions {
  client: SQSClient;
  queueUrl: string;
  queueArn: string;
  batchSize: number;
  batchingWindowMs: number;
  maxConcurrency: number;
  reportBatchItemFailures: boolean;
  invoke: (event: unknown) => Promise<InvokeResult>;
  log: (line: string) => void;
}

/**
 * An SQS event source mapping as Lambda runs one: pollers (up to the maximum concurrency) gather a
 * batch (up to the batch size, or until the batching window closes), invoke the function, and delete
 * what succeeded. A thrown error leaves the whole batch; with partial batch responses only the listed
 * messages stay. Messages left become visible again after the queue's visibility timeout, and the
 * queue's redrive policy moves them to the dead-letter queue.
 */
export class QueueEventSource {
  private running = false;
  /** The pollers running (each a loop, removed when it returns). */
  private readonly pollers = new Set<Promise<void>>();
  /** Ends the long poll under way when the source stops (else stopping would wait up to 20 s). */
  private readonly stopping = new AbortController();

  constructor(private readonly options: QueueEventSourceOptions) {}

  start(): void {
    this.running = true;
    this.startPoller(true);
  }

  /** Stops polling and waits for the invocations under way. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    while (this.pollers.size > 0) await Promise.all(this.pollers);
  }

  /**
   * One poller while the queue is empty; each batch found starts one more, up to the maximum
   * concurrency, and a poller other than the first stops when it finds none. So a backlog is
   * worked at the mapping's full concurrency (as Lambda scales its pollers with the backlog) while
   * an idle runtime's many sources cost one long poll each, not one per concurrency.
   */
  private startPoller(first: boolean): void {
    const poller: Promise<void> = this.pollUntilDone(first).finally(() => this.pollers.delete(poller));
    this.pollers.add(poller);
  }

  private async pollUntilDone(first: boolean): Promise<void> {
    while (this.running) {
      try {
        const batch = await this.gather(first);
        if (batch.length === 0) {
          if (!first) return;
          continue;
        }
        if (this.pollers.size < this.options.maxConcurrency) this.startPoller(false);
        await this.deliver(batch);
      } catch (error) {
        if (!this.running) return;
        this.options.log(
          `event source ${this.options.queueArn}: ${error instanceof Error ? error.message : String(error)}`,
        );
        await sleep(1_000);
      }
    }
  }

  /** A batch, or none: the first poller waits (a long poll) for a message, the others do not. */
  private async gather(waitForOne: boolean): Promise<Message[]> {
    const { client, queueUrl, batchSize, batchingWindowMs } = this.options;
    const batch: Message[] = [];
    let windowEnds: number | undefined;
    while (this.running && batch.length < batchSize) {
      const longPoll = waitForOne && batch.length === 0;
      const { Messages = [] } = await client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: longPoll ? 1 : Math.min(10, batchSize - batch.length),
          WaitTimeSeconds: longPoll ? LONG_POLL_SECONDS : 0,
          AttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
        { abortSignal: this.stopping.signal },
      );
      batch.push(...Messages);
      if (batch.length === 0) return batch;
      windowEnds ??= Date.now() + batchingWindowMs;
      if (Date.now() >= windowEnds) break;
      if (Messages.length === 0) await sleep(Math.min(GATHER_POLL_MS, Math.max(0, windowEnds - Date.now())));
    }
    return batch;
  }

  private async deliver(batch: Message[]): Promise<void> {
    const result = await this.options.invoke(this.event(batch));
    const done = this.succeeded(batch, result);
    for (let start = 0; start < done.length; start += 10) {
      await this.options.client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.options.queueUrl,
          Entries: done.slice(start, start + 10).map((message, index) => ({
            Id: String(index),
            ReceiptHandle: message.ReceiptHandle,
          })),
        }),
      );
    }
  }

  /** Which messages to delete, by Lambda's rules for SQS batches. */
  private succeeded(batch: Message[], result: InvokeResult): Message[] {
    if (!result.ok) {
      this.options.log(
        `event source ${this.options.queueArn}: invocation failed, ${batch.length} messages stay (${result.error.errorMessage})`,
      );
      return [];
    }
    if (!this.options.reportBatchItemFailures) return batch;
    const failures =
      (result.value as { batchItemFailures?: { itemIdentifier?: unknown }[] } | null)?.batchItemFailures ??
      [];
    const ids = new Set(batch.map((message) => message.MessageId));
    const failed = new Set<unknown>();
    for (const failure of failures) {
      // An identifier that is not in the batch makes Lambda treat the whole batch as failed.
      if (!ids.has(failure?.itemIdentifier as string)) return [];
      failed.add(failure.itemIdentifier);
    }
    return batch.filter((message) => !failed.has(message.MessageId));
  }

  private event(batch: Message[]) {
    return {
      Records: batch.map((message) => ({
        messageId: message.MessageId,
        receiptHandle: message.ReceiptHandle,
        body: message.Body ?? '',
        attributes: message.Attributes ?? {},
        messageAttributes: message.MessageAttributes ?? {},
        md5OfBody: message.MD5OfBody,
        eventSource: 'aws:sqs',
        eventSourceARN: this.options.queueArn,
        awsRegion: LOCAL_REGION,
      })),
    };
  }
}

export function scheduledEvent(ruleArn: string) {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '000000000000',
    time: new Date().toISOString(),
    region: LOCAL_REGION,
    resources: [ruleArn],
    detail: {},
  };
}
