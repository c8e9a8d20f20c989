import { Duration, Validations } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface EmailQueueProps {
  /** The consumer's timeout: the visibility timeout is six times it, as AWS advises for event sources. */
  consumerTimeout: Duration;
  maxReceiveCount: number;
}

/**
 * Ten recipients of a job to a message (a chunk; a retried recipient alone). A message received `maxReceiveCount` times without success moves to
 * the dead-letter queue, whose consumer records it failed so its job still ends.
 */
export class EmailQueue extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: EmailQueueProps) {
    super(scope, id);
    this.deadLetterQueue = new Queue(this, 'DeadLetters', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      visibilityTimeout: Duration.seconds(props.consumerTimeout.toSeconds() * 6),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'Serverless::Serverless-SQSRedrivePolicy',
      reason: 'This is the dead-letter queue; its own consumer records each message as a failed delivery.',
    });
    this.queue = new Queue(this, 'Emails', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(4),
      visibilityTimeout: Duration.seconds(props.consumerTimeout.toSeconds() * 6),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });
  }
}

/**
 * A queue of work a function consumes, with its dead-letter queue: both encrypted and TLS-only,
 * dead letters kept 14 days. The visibility timeout is six times the consumer's timeout, as AWS
 * advises for event sources; `deadLetterReason` says who reads the dead letters (cdk-nag asks).
 */
export function workQueue(
  scope: Construct,
  ids: { queue: string; deadLetters: string },
  props: {
    consumerTimeout: Duration;
    retention: Duration;
    maxReceiveCount: number;
    deadLetterReason: string;
  },
): { queue: Queue; deadLetterQueue: Queue } {
  const deadLetterQueue = new Queue(scope, ids.deadLetters, {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  Validations.of(deadLetterQueue).acknowledge({
    id: 'Serverless::Serverless-SQSRedrivePolicy',
    reason: props.deadLetterReason,
  });
  const queue = new Queue(scope, ids.queue, {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: props.retention,
    visibilityTimeout: Duration.seconds(props.consumerTimeout.toSeconds() * 6),
    deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
  });
  return { queue, deadLetterQueue };
}
