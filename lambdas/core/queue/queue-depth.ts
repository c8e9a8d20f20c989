import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** What a queue holds, as SQS counts it: approximately, and settling about a minute after sends stop. */
export interface QueueDepth {
  /** Waiting to be received. */
  visible: number;
  /** Received and neither deleted nor back yet (a consumer has them, or one crashed with them). */
  inFlight: number;
  /** Sent with a delay that has not passed. */
  delayed: number;
}

export interface QueueGauge {
  depth(): Promise<QueueDepth>;
}

export const isEmpty = (depth: QueueDepth) => depth.visible + depth.inFlight + depth.delayed === 0;

/** Reads a queue's depth with GetQueueAttributes (the only SQS action it needs). */
export class SqsQueueGauge implements QueueGauge {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async depth(): Promise<QueueDepth> {
    const { Attributes = {} } = await this.client.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.queueUrl,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    return {
      visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
      delayed: Number(Attributes.ApproximateNumberOfMessagesDelayed ?? 0),
    };
  }
}
