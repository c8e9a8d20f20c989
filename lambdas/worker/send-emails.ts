// SQS event source: consumer --> claim, render, pace, transport (SES) --> progress recorder (DynamoDB transactions)
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import {
  deliveriesFromEnv,
  emailQueueFromEnv,
  jobContentsFromEnv,
  jobsFromEnv,
  nonprofitsFromEnv,
  recipientQuotaFromEnv,
  renderedEmailsFromEnv,
  sendSettingsFromEnv,
  suppressionsFromEnv,
  transportFromEnv,
  unsubscribeLinksFromEnv,
} from '../core/adapters';
import { type ProcessEmailsDependencies, processEmailBatch } from '../core/jobs/process-emails';
import { batchResponse, logLine, receivedMessages, workerHandler } from './support';

export const makeSendEmails = (deps: ProcessEmailsDependencies) =>
  workerHandler(async (event: SQSEvent, context): Promise<SQSBatchResponse> => {
    const result = await processEmailBatch(deps, receivedMessages(event), () =>
      context.getRemainingTimeInMillis(),
    );
    return batchResponse(result);
  });

export const handler = makeSendEmails({
  contents: jobContentsFromEnv(),
  jobs: jobsFromEnv(),
  nonprofits: nonprofitsFromEnv(),
  transport: transportFromEnv(),
  deliveries: deliveriesFromEnv(),
  suppressions: suppressionsFromEnv(),
  unsubscribe: unsubscribeLinksFromEnv(),
  queue: emailQueueFromEnv(),
  quota: recipientQuotaFromEnv(),
  rendered: renderedEmailsFromEnv(),
  ...sendSettingsFromEnv(),
  log: logLine,
});
