// SQS event source on the SES feedback queue (SNS, raw delivery): consumer --> suppression list + delivery ledger

import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import {
  addressKeysFromEnv,
  auditTrailFromEnv,
  deliveriesFromEnv,
  eventOutboxFromEnv,
  jobsFromEnv,
  sendingControlsFromEnv,
  suppressionsFromEnv,
} from '../core/adapters';
import { METRIC } from '../core/observability/metric-names';
import { logger, metrics } from '../core/observability/telemetry';
import { type GuardDependencies, guardReputation } from '../core/sending/reputation';
import { type RecordFeedbackDependencies, recordFeedback } from '../core/suppressions/record-feedback';
import { logLine, receivedMessages, workerHandler } from './support';

export const makeRecordFeedback = (deps: RecordFeedbackDependencies, guard?: GuardDependencies) =>
  workerHandler(async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const result = await recordFeedback(deps, receivedMessages(event));
    // After hard bounces or complaints, the reputation guard looks at the window. A failure fails
    // the batch: handed over again, its reports are duplicates, and the guard looks again.
    if (guard && result.reputationReports > 0) {
      const paused = await guardReputation(guard);
      if (paused) {
        metrics.addMetric(METRIC.sendingPausedByGuard, MetricUnit.Count, 1);
        logger.error('The reputation guard paused sending: emails wait until an operator resumes it', {
          reason: paused.over,
          ...paused,
        });
      }
    }
    const counts = [
      [METRIC.emailsBounced, result.bounced],
      [METRIC.emailsBouncedTransient, result.transientBounces],
      [METRIC.emailsComplained, result.complained],
    ] as const;
    for (const [name, count] of counts) if (count > 0) metrics.addMetric(name, MetricUnit.Count, count);
    return { batchItemFailures: result.retry.map((itemIdentifier) => ({ itemIdentifier })) };
  });

const outbox = eventOutboxFromEnv();
const audit = auditTrailFromEnv();
const controls = sendingControlsFromEnv(outbox, audit);

export const handler = makeRecordFeedback(
  {
    suppressions: suppressionsFromEnv(undefined, audit, addressKeysFromEnv()),
    ledger: deliveriesFromEnv(outbox),
    jobs: jobsFromEnv(),
    log: logLine,
  },
  // The feedback queue exists only with the SES transport: the switch is there.
  controls.switch ? { ...controls, switch: controls.switch } : undefined,
);
