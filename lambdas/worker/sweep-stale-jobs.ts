// EventBridge schedule: sweeper --> active jobs --> re-enqueue recipients without an outcome
import { z } from 'zod';
import { deliveriesFromEnv, emailQueueFromEnv, jobsFromEnv } from '../core/adapters';
import { readEnv } from '../core/env';
import { type SweepDependencies, type SweepResult, sweepStaleJobs } from '../core/jobs/sweep';
import { logLine } from './sqs';

export const makeSweepStaleJobs = (deps: SweepDependencies) => async (): Promise<SweepResult> => {
  const result = await sweepStaleJobs(deps);
  logLine('INFO', 'Sweep finished', { ...result });
  return result;
};

const env = readEnv({ SWEEPER_STALE_AFTER_SECONDS: z.coerce.number().int().positive() });

export const handler = makeSweepStaleJobs({
  jobs: jobsFromEnv(),
  deliveries: deliveriesFromEnv(),
  queue: emailQueueFromEnv(),
  staleAfterMs: env.SWEEPER_STALE_AFTER_SECONDS * 1000,
});
