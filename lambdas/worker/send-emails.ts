// SQS event source: consumer --> render + transport --> progress recorder (DynamoDB transactions)
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { deliveriesFromEnv, jobContentsFromEnv, nonprofitsFromEnv, transportFromEnv } from '../core/adapters';
import { type ProcessEmailsDependencies, processEmailBatch } from '../core/jobs/process-emails';
import { batchResponse, logLine, receivedMessages, workerHandler } from './support';

export const makeSendEmails = (deps: ProcessEmailsDependencies) =>
  workerHandler(async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const result = await processEmailBatch(deps, receivedMessages(event));
    return batchResponse(result);
  });

export const handler = makeSendEmails({
  contents: jobContentsFromEnv(),
  nonprofits: nonprofitsFromEnv(),
  transport: transportFromEnv(),
  progress: deliveriesFromEnv(),
  log: logLine,
});
