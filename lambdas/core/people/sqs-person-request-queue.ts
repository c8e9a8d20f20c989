import type { SQSClient } from '@aws-sdk/client-sqs';
import { sendAll } from '../queue/email-queue';
import type { PersonRequestMessage, PersonRequestQueue } from './person-requests';

/** The person requests' queue in SQS: each step a message, sent in batches. */
export class SqsPersonRequestQueue implements PersonRequestQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(messages: readonly PersonRequestMessage[], delaySeconds = 0): Promise<void> {
    await sendAll(
      this.client,
      this.queueUrl,
      messages.map((message) => JSON.stringify(message)),
      delaySeconds,
    );
  }
}
