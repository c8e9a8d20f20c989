// SQS event source on the SES feedback queue (SNS, raw delivery): consumer --> suppression list + delivery ledger

import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { deliveriesFromEnv, jobsFromEnv, suppressionsFromEnv } from '../core/adapters';
import { METRIC } from '../core/observability/metric-names';
import { metrics } from '../core/observability/telemetry';
import { type RecordFeedbackDependencies, recordFeedback } from '../core/suppressions/record-feedback';
import { logLine, receivedMessages, workerHandler } from './support';

export const makeRecordFeedback = (deps: RecordFeedbackDependencies) =>
  workerHandler(async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const result = await recordFeedback(deps, receivedMessages(event));
    const counts = [
      [METRIC.emailsBounced, result.bounced],
      [METRIC.emailsBouncedTransient, result.transientBounces],
      [METRIC.emailsComplained, result.complained],
    ] as const;
    for (const [name, count] of counts) if (count > 0) metrics.addMetric(name, MetricUnit.Count, count);
    return { batchItemFailures: result.retry.map((itemIdentifier) => ({ itemIdentifier })) };
  });

export const handler = makeRecordFeedback({
  suppressions: suppressionsFromEnv(),
  ledger: deliveriesFromEnv(),
  jobs: jobsFromEnv(),
  log: logLine,
});
