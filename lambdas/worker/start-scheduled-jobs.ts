// EventBridge schedule (every minute): starter --> scheduled jobs due (jobs index) --> queued, recipients enqueued
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { emailQueueFromEnv, jobContentsFromEnv, jobsFromEnv } from '../core/adapters';
import {
  type StartScheduledDependencies,
  type StartScheduledResult,
  startScheduledJobs,
} from '../core/jobs/scheduled-jobs';
import { METRIC } from '../core/observability/metric-names';
import { logger, metrics } from '../core/observability/telemetry';
import { workerHandler } from './support';

export const makeStartScheduledJobs = (deps: Omit<StartScheduledDependencies, 'deadline'>) =>
  workerHandler(async (_event: unknown, context: Context): Promise<StartScheduledResult> => {
    const deadline = new Date(Date.now() + context.getRemainingTimeInMillis());
    const result = await startScheduledJobs({ ...deps, deadline });
    if (result.started.length > 0) {
      metrics.addMetric(METRIC.scheduledJobsStarted, MetricUnit.Count, result.started.length);
      logger.info('Scheduled jobs started', { jobs: result.started });
    }
    for (const failure of result.notStarted)
      logger.warn('A scheduled job could not be started; the next run tries again', failure);
    if (result.deferred.length > 0)
      logger.info('Scheduled jobs left to the next run (too little time left in this one)', {
        jobs: result.deferred,
      });
    for (const failure of result.notEnqueued)
      logger.warn(
        'A scheduled job started but its recipients could not be enqueued; the sweeper will',
        failure,
      );
    return result;
  });

export const handler = makeStartScheduledJobs({
  jobs: jobsFromEnv(),
  contents: jobContentsFromEnv(),
  queue: emailQueueFromEnv(),
});
