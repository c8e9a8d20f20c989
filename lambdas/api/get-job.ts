// GET /jobs/{job_id} and GET /jobs/{job_id}/status: handler --> job store (DynamoDB)
import { jobsFromEnv } from '../core/adapters';
import { apiHandler, callerApiKeyId, json, parsePathParameter } from '../core/http';
import { jobId, jobView } from '../core/jobs/job';
import { findOwnedJob, type JobStore } from '../core/jobs/job-store';

export const makeGetJob = ({ jobs }: { jobs: Pick<JobStore, 'get' | 'content'> }) =>
  apiHandler(async (event) => {
    const id = parsePathParameter(event, 'job_id', jobId);
    const job = await findOwnedJob(jobs, id, callerApiKeyId(event));
    // `/status` answers the progress alone, as the original API's status route did; the job itself adds what it sends.
    if (event.resource.endsWith('/status')) return json(200, jobView(job));
    return json(200, jobView(job, await jobs.content(id)));
  });

export const handler = makeGetJob({ jobs: jobsFromEnv() });
