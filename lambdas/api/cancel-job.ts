// POST /jobs/{job_id}/cancel: handler --> cancel job (job store, DynamoDB)
import { jobsFromEnv } from '../core/adapters';
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

export const handler = makeCancelJob({ jobs: jobsFromEnv() });
