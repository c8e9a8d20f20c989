import { Duration, Validations } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Queue, QueueEncryption, type QueueProps } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/**
 * Encrypted with the owner's key (the messages carry addresses), TLS only. A data key is reused for
 * an hour (SQS's default is 5 minutes): one KMS request per producer or consumer an hour, not one
 * per few minutes, for what the key protects.
 */
const encrypted = (
  key: IKey,
): Pick<QueueProps, 'encryption' | 'encryptionMasterKey' | 'dataKeyReuse' | 'enforceSSL'> => ({
  encryption: QueueEncryption.KMS,
  encryptionMasterKey: key,
  dataKeyReuse: Duration.hours(1),
  enforceSSL: true,
});

export interface EmailQueueProps {
  encryptionKey: IKey;
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
      ...encrypted(props.encryptionKey),
      retentionPeriod: Duration.days(14),
      visibilityTimeout: Duration.seconds(props.consumerTimeout.toSeconds() * 6),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'Serverless::Serverless-SQSRedrivePolicy',
      reason: 'This is the dead-letter queue; its own consumer records each message as a failed delivery.',
    });
    this.queue = new Queue(this, 'Emails', {
      ...encrypted(props.encryptionKey),
      retentionPeriod: Duration.days(4),
      visibilityTimeout: Duration.seconds(props.consumerTimeout.toSeconds() * 6),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });
  }
}

/**
 * A queue of work a function consumes, with its dead-letter queue: both encrypted with the owner's key and TLS-only,
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
    encryptionKey: IKey;
  },
): { queue: Queue; deadLetterQueue: Queue } {
  const deadLetterQueue = new Queue(scope, ids.deadLetters, {
    ...encrypted(props.encryptionKey),
    retentionPeriod: Duration.days(14),
  });
  Validations.of(deadLetterQueue).acknowledge({
    id: 'Serverless::Serverless-SQSRedrivePolicy',
    reason: props.deadLetterReason,
  });
  const queue = new Queue(scope, ids.queue, {
    ...encrypted(props.encryptionKey),
    retentionPeriod: props.retention,
    visibilityTimeout: Duration.seconds(props.consumerTimeout.toSeconds() * 6),
    deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
  });
  return { queue, deadLetterQueue };
}
