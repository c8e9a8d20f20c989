// DynamoDB stream of the deliveries table: counter --> each job's counters and its end (jobs table, one transaction per job)

import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AttributeValue, DynamoDBStreamEvent } from 'aws-lambda';
import { jobsFromEnv, outcomeCountsFromEnv } from '../core/adapters';
import { type DeliveryStatus, jobOfDeliveryPartition } from '../core/jobs/deliveries';
import {
  type CountOutcomesDependencies,
  countOutcomes,
  type DeliveryChange,
  STREAM_COUNTED,
} from '../core/jobs/outcome-counts';
import { METRIC } from '../core/observability/metric-names';
import { logger, metrics } from '../core/observability/telemetry';
import { logLine, workerHandler } from './support';

const statusOf = (image: Record<string, AttributeValue> | undefined) =>
  image?.status?.S as DeliveryStatus | undefined;

/** What the domain needs of a stream record: its id, its job, and the status before and after. */
export function deliveryChanges(event: DynamoDBStreamEvent): DeliveryChange[] {
  return event.Records.flatMap((record) => {
    const partition = record.dynamodb?.Keys?.job_id?.S;
    if (!record.eventID || !partition) return [];
    // A sharded job's deliveries are under `<job id>#<shard>`: all of them count on the job.
    const jobId = jobOfDeliveryPartition(partition);
    return [
      {
        eventId: record.eventID,
        jobId,
        before: statusOf(record.dynamodb?.OldImage),
        after: statusOf(record.dynamodb?.NewImage),
        streamCounted: record.dynamodb?.NewImage?.[STREAM_COUNTED]?.BOOL === true,
      },
    ];
  });
}

/**
 * A throw hands the whole batch over again (no bisecting: a retry must start from the same first
 * record, which is what names each job's part of it); the jobs counted before change nothing then.
 */
export const makeCountOutcomes = (deps: CountOutcomesDependencies) =>
  workerHandler(async (event: DynamoDBStreamEvent): Promise<void> => {
    const result = await countOutcomes(deps, deliveryChanges(event));
    if (result.counted > 0) metrics.addMetric(METRIC.outcomesCounted, MetricUnit.Count, result.counted);
    if (result.dropped > 0) metrics.addMetric(METRIC.outcomesNotCounted, MetricUnit.Count, result.dropped);
    for (const job of result.completedJobs) {
      metrics.addMetric(METRIC.jobDuration, MetricUnit.Seconds, job.durationSeconds);
      logger.info('Job completed', { job_id: job.jobId, duration_seconds: job.durationSeconds });
    }
  });

export const handler = makeCountOutcomes({
  counts: outcomeCountsFromEnv(),
  jobs: jobsFromEnv(),
  log: logLine,
});
