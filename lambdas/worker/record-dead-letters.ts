// SQS event source on the dead-letter queue: consumer --> claims + progress recorder, each message as failed (or sent, if handed over; cancelled, if its job was)

import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { deliveriesFromEnv, jobContentsFromEnv, jobsFromEnv, recipientQuotaFromEnv } from '../core/adapters';
import { type ProcessEmailsDependencies, recordDeadLetters } from '../core/jobs/process-emails';
import { METRIC } from '../core/observability/metric-names';
import { metrics } from '../core/observability/telemetry';
import { batchResponse, logLine, receivedMessages, workerHandler } from './support';

export const makeRecordDeadLetters = (
  deps: Pick<ProcessEmailsDependencies, 'contents' | 'deliveries' | 'jobs' | 'quota' | 'log'>,
) =>
  workerHandler(async (event: SQSEvent): Promise<SQSBatchResponse> => {
    metrics.addMetric(METRIC.deadLetters, MetricUnit.Count, event.Records.length);
    const result = await recordDeadLetters(deps, receivedMessages(event));
    return batchResponse(result);
  });

export const handler = makeRecordDeadLetters({
  contents: jobContentsFromEnv(),
  deliveries: deliveriesFromEnv(),
  jobs: jobsFromEnv(),
  quota: recipientQuotaFromEnv(),
  log: logLine,
});
