// EventBridge schedule: sweeper --> queue depths + running jobs --> re-enqueue recipients whose messages were lost
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import {
  deliveriesFromEnv,
  emailQueueFromEnv,
  eventOutboxFromEnv,
  jobContentsFromEnv,
  jobsFromEnv,
  queueGaugesFromEnv,
} from '../core/adapters';
import { type SweepDependencies, type SweepResult, sweepStaleJobs } from '../core/jobs/sweep';
import { METRIC } from '../core/observability/metric-names';
import { logger, metrics } from '../core/observability/telemetry';
import { readSettings, SETTING } from '../core/settings';
import { workerHandler } from './support';

export const makeSweepStaleJobs = (deps: Omit<SweepDependencies, 'deadline'>) =>
  workerHandler(async (_event: unknown, context: Context): Promise<SweepResult> => {
    const deadline = new Date(Date.now() + context.getRemainingTimeInMillis());
    const result = await sweepStaleJobs({ ...deps, deadline });
    metrics.addMetric(METRIC.sweeperReenqueued, MetricUnit.Count, result.reenqueued);
    for (const failure of result.unrecovered)
      logger.error('Could not recover a job; the next sweep tries again', failure);
    if (result.jobsCountedFromLedger > 0)
      logger.warn('Ended jobs whose counting had stopped short of their outcomes, from their ledger', {
        jobs: result.jobsCountedFromLedger,
      });
    logger.info('Sweep finished', { ...result });
    return result;
  });

const { settleSeconds, ledgerCountAfterSeconds } = readSettings({
  settleSeconds: SETTING.sweeperQueueSettleSeconds,
  ledgerCountAfterSeconds: SETTING.ledgerCountAfterSeconds,
});

export const handler = makeSweepStaleJobs({
  // The sweeper ends a job from its ledger now and then: that end is told as the counter's is.
  jobs: jobsFromEnv(eventOutboxFromEnv()),
  contents: jobContentsFromEnv(),
  deliveries: deliveriesFromEnv(),
  queue: emailQueueFromEnv(),
  gauges: queueGaugesFromEnv(),
  settleMs: settleSeconds * 1000,
  ledgerCountAfterMs: ledgerCountAfterSeconds * 1000,
});
