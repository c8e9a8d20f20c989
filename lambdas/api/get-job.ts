// GET /jobs/{job_id} and GET /jobs/{job_id}/status: handler --> job store + job contents (DynamoDB)
import { jobContentsFromEnv, jobsFromEnv } from '../core/adapters';
import { apiHandler, callerApiKeyId, json, parsePathParameter } from '../core/http';
import { jobId } from '../core/jobs/job';
import { findOwnedJob, type JobContentStore, type JobStore } from '../core/jobs/job-store';
import { jobView } from '../core/responses';

export const makeGetJob = ({
  jobs,
  contents,
}: {
  jobs: Pick<JobStore, 'get'>;
  contents: Pick<JobContentStore, 'content'>;
}) =>
  apiHandler(async (event) => {
    const id = parsePathParameter(event, 'job_id', jobId);
    const job = await findOwnedJob(jobs, id, callerApiKeyId(event));
    // `/status` answers the progress alone, as the original API's status route did; the job itself adds what it sends.
    if (event.resource.endsWith('/status')) return json(200, jobView(job));
    return json(200, jobView(job, await contents.content(id)));
  });

export const handler = makeGetJob({ jobs: jobsFromEnv(), contents: jobContentsFromEnv() });
