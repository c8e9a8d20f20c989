import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { backoff, chunks, mapConcurrently } from '../concurrency';

/** One message per recipient: the job holds everything else. */
export const emailMessage = z.strictObject({ job_id: z.uuid(), recipient: z.string().min(3) });
export type EmailMessage = z.output<typeof emailMessage>;

export interface EmailQueue {
  /** Sends every message or throws; a message it could not send is named in the error. */
  enqueue(messages: readonly EmailMessage[]): Promise<void>;
}

/** SendMessageBatch takes at most 10 entries. */
const BATCH_SIZE = 10;
const CONCURRENT_BATCHES = 16;
const MAX_ATTEMPTS = 5;

export class SqsEmailQueue implements EmailQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async enqueue(messages: readonly EmailMessage[]): Promise<void> {
    await mapConcurrently(chunks(messages, BATCH_SIZE), CONCURRENT_BATCHES, async (batch) => {
      let entries = batch.map((message, index) => ({
        Id: String(index),
        MessageBody: JSON.stringify(message),
      }));
      for (let attempt = 0; entries.length > 0; attempt++) {
        if (attempt > 0) await backoff(attempt, 50);
        const result = await this.client.send(
          new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }),
        );
        const failed = new Set((result.Failed ?? []).map((failure) => failure.Id));
        entries = entries.filter((entry) => failed.has(entry.Id));
        if (entries.length > 0 && attempt + 1 >= MAX_ATTEMPTS) {
          throw new Error(`Could not enqueue ${entries.length} messages: ${JSON.stringify(result.Failed)}`);
        }
      }
    });
  }
}
