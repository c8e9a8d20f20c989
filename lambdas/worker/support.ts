import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { BatchResult, Log, ReceivedMessage } from '../core/jobs/process-emails';
import { METRIC } from '../core/observability/metric-names';
import { logger, metrics, telemetry } from '../core/observability/telemetry';

/** What the domain needs of an SQS record. */
export function receivedMessages(event: SQSEvent): ReceivedMessage[] {
  return event.Records.map((record) => ({
    messageId: record.messageId,
    body: record.body,
    receiveCount: Number(record.attributes?.ApproximateReceiveCount ?? 1),
    receiptHandle: record.receiptHandle,
  }));
}

/** The domain's log port, written through the Powertools logger (JSON lines with the invocation's context). */
export const logLine: Log = (level, message, detail = {}) => {
  if (level === 'ERROR') logger.error(message, detail);
  else if (level === 'WARN') logger.warn(message, detail);
  else logger.info(message, detail);
};

/** Counts what a batch did, and answers the event source: only the messages to retry go back. */
export function batchResponse(result: BatchResult): SQSBatchResponse {
  emitBatchMetrics(result);
  return { batchItemFailures: result.retry.map((itemIdentifier) => ({ itemIdentifier })) };
}

/** Counts what a batch did: outcomes by class, and their latency. */
function emitBatchMetrics(result: BatchResult): void {
  if (result.sent > 0) metrics.addMetric(METRIC.emailsSent, MetricUnit.Count, result.sent);
  if (result.suppressed > 0) metrics.addMetric(METRIC.emailsSuppressed, MetricUnit.Count, result.suppressed);
  if (result.cancelled > 0) metrics.addMetric(METRIC.emailsCancelled, MetricUnit.Count, result.cancelled);
  const failures = [
    [METRIC.emailsFailedNonprofitDeleted, result.failed.nonprofitDeleted],
    [METRIC.emailsFailedRejected, result.failed.rejected],
    [METRIC.emailsFailedTooLarge, result.failed.tooLarge],
    [METRIC.emailsFailedDeadLetter, result.failed.deadLetter],
  ] as const;
  for (const [name, count] of failures) if (count > 0) metrics.addMetric(name, MetricUnit.Count, count);
  // Recipients, not messages: a chunk message carries up to ten.
  if (result.retriedRecipients > 0)
    metrics.addMetric(METRIC.emailsRetried, MetricUnit.Count, result.retriedRecipients);
  if (result.deferred > 0) metrics.addMetric(METRIC.emailsDeferred, MetricUnit.Count, result.deferred);
  if (result.paused) metrics.addMetric(METRIC.sendingPaused, MetricUnit.Count, 1);
  if (result.duplicates > 0)
    metrics.addMetric(METRIC.duplicateDeliveries, MetricUnit.Count, result.duplicates);
  for (const latency of result.latenciesMs)
    metrics.addMetric(METRIC.emailLatency, MetricUnit.Milliseconds, latency);
}

/** Wraps a worker handler with the invocation's logging context and the metrics flush. */
export function workerHandler<E, R>(handler: (event: E, context: Context) => Promise<R>) {
  return middy<E, R>().use(telemetry<E, R>()).handler(handler);
}
