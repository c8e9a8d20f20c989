// GET /jobs?status=&limit=&cursor=: handler --> job store (DynamoDB)
import { jobsFromEnv } from '../core/adapters';
import { apiHandler, callerApiKeyId, json, parseQuery } from '../core/http';
import { jobListQuery } from '../core/jobs/job';
import type { JobStore } from '../core/jobs/job-store';
import { jobView } from '../core/responses';

export const makeListJobs = ({ jobs }: { jobs: Pick<JobStore, 'listForKey'> }) =>
  apiHandler(async (event) => {
    const query = parseQuery(event, jobListQuery);
    const page = await jobs.listForKey(callerApiKeyId(event), query);
    return json(200, { jobs: page.items.map((job) => jobView(job)), next_cursor: page.nextCursor });
  });

export const handler = makeListJobs({ jobs: jobsFromEnv() });
