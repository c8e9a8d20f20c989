// EventBridge schedule: sweeper --> active jobs --> re-enqueue recipients without an outcome

import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import { deliveriesFromEnv, emailQueueFromEnv, jobsFromEnv } from '../core/adapters';
import { readEnv } from '../core/env';
import { type SweepDependencies, type SweepResult, sweepStaleJobs } from '../core/jobs/sweep';
import { METRIC } from '../core/observability/metric-names';
import { logger, metrics } from '../core/observability/telemetry';
import { workerHandler } from './support';

export const makeSweepStaleJobs = (deps: SweepDependencies) =>
  workerHandler(async (): Promise<SweepResult> => {
    const result = await sweepStaleJobs(deps);
    metrics.addMetric(METRIC.sweeperReenqueued, MetricUnit.Count, result.reenqueued);
    logger.info('Sweep finished', { ...result });
    return result;
  });

const env = readEnv({ SWEEPER_STALE_AFTER_SECONDS: z.coerce.number().int().positive() });

export const handler = makeSweepStaleJobs({
  jobs: jobsFromEnv(),
  deliveries: deliveriesFromEnv(),
  queue: emailQueueFromEnv(),
  staleAfterMs: env.SWEEPER_STALE_AFTER_SECONDS * 1000,
});
