// SQS event source on the dead-letter queue: consumer --> progress recorder, each message as failed
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { deliveriesFromEnv, jobsFromEnv } from '../core/adapters';
import { type ProcessEmailsDependencies, recordDeadLetters } from '../core/jobs/process-emails';
import { logLine, receivedMessages } from './sqs';

export const makeRecordDeadLetters =
  (deps: Pick<ProcessEmailsDependencies, 'jobs' | 'progress' | 'log'>) =>
  async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const result = await recordDeadLetters(deps, receivedMessages(event));
    return { batchItemFailures: result.retry.map((itemIdentifier) => ({ itemIdentifier })) };
  };

export const handler = makeRecordDeadLetters({
  jobs: jobsFromEnv(),
  progress: deliveriesFromEnv(),
  log: logLine,
});
