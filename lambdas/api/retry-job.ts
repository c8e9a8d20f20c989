// POST /jobs/{job_id}/retry: handler --> retry job (job store, deliveries, suppressions, email queue)
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  deliveriesFromEnv,
  emailQueueFromEnv,
  jobContentsFromEnv,
  jobsFromEnv,
  suppressionsFromEnv,
} from '../core/adapters';
import { apiHandler, callerApiKeyId, header, json, parsePathParameter } from '../core/http';
import { jobId, readIdempotencyKey } from '../core/jobs/job';
import { type RetryJobDependencies, retryJob } from '../core/jobs/retry-job';
import { METRIC } from '../core/observability/metric-names';
import { logger, metrics } from '../core/observability/telemetry';
import { jobView } from '../core/responses';

export const makeRetryJob = (deps: RetryJobDependencies) =>
  apiHandler(async (event, context) => {
    const id = parsePathParameter(event, 'job_id', jobId);
    const key = readIdempotencyKey(header(event, 'idempotency-key'));
    const retried = await retryJob(deps, {
      jobId: id,
      apiKeyId: callerApiKeyId(event),
      idempotencyKey: key,
      enqueueDeadline: new Date(Date.now() + context.getRemainingTimeInMillis()),
    });
    const location = { location: `/jobs/${id}` };
    if (retried.replayed) {
      return json(
        202,
        {
          ...jobView(retried.job),
          retrying: null,
          not_retried: null,
          message: 'This Idempotency-Key already retried this job; its current status is shown.',
        },
        { ...location, 'idempotent-replayed': 'true' },
      );
    }
    metrics.addMetric(METRIC.recipientsRetried, MetricUnit.Count, retried.retrying);
    logger.info('Job failures requeued', { job_id: id, retrying: retried.retrying });
    return json(
      202,
      {
        ...jobView(retried.job),
        retrying: retried.retrying,
        not_retried: retried.notRetried,
        message: `Retrying ${retried.retrying} failed ${retried.retrying === 1 ? 'recipient' : 'recipients'}.`,
      },
      location,
    );
  });

export const handler = makeRetryJob({
  jobs: jobsFromEnv(),
  contents: jobContentsFromEnv(),
  deliveries: deliveriesFromEnv(),
  suppressions: suppressionsFromEnv(),
  queue: emailQueueFromEnv(),
  onEnqueueFailure: (job, error) =>
    logger.error('Failures requeued but not enqueued; the sweeper will enqueue them', {
      job_id: job.job_id,
      error: error instanceof Error ? error : String(error),
    }),
});
