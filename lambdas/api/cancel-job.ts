// POST /jobs/{job_id}/cancel: handler --> cancel job (job store, DynamoDB)
import { eventOutboxFromEnv, jobContentsFromEnv, jobsFromEnv, recipientQuotaFromEnv } from '../core/adapters';
import { apiHandler, callerApiKeyId, json, parsePathParameter } from '../core/http';
import { type CancelJobDependencies, cancelJob } from '../core/jobs/cancel-job';
import { jobId } from '../core/jobs/job';
import { logger } from '../core/observability/telemetry';
import { jobView } from '../core/responses';

export const makeCancelJob = (deps: CancelJobDependencies) =>
  apiHandler(async (event) => {
    const id = parsePathParameter(event, 'job_id', jobId);
    const job = await cancelJob(deps, { jobId: id, apiKeyId: callerApiKeyId(event) });
    logger.info('Job cancel recorded', { job_id: id, status: job.status });
    return json(
      202,
      {
        ...jobView(job),
        message:
          job.status === 'cancelled'
            ? 'The job is cancelled.'
            : 'Cancel recorded: no email of this job starts from now on (one already being handed to SES may still arrive). It ends cancelled once its queued messages are drained.',
      },
      { location: `/jobs/${id}` },
    );
  });

export const handler = makeCancelJob({
  // A scheduled job ends at its cancel: that end is told as the counter's is.
  jobs: jobsFromEnv(eventOutboxFromEnv()),
  contents: jobContentsFromEnv(),
  quota: recipientQuotaFromEnv(),
  onRefundFailure: (jobId, error) =>
    logger.error('Could not give a cancelled scheduled job back to the recipient quota', {
      job_id: jobId,
      error,
    }),
});
