// GET /jobs?status=&limit=&cursor=: handler --> job store (DynamoDB)
import { z } from 'zod';
import { jobsFromEnv } from '../core/adapters';
import { pageLimit } from '../core/cursor';
import { apiHandler, callerApiKeyId, json, parseQuery } from '../core/http';
import { JOB_STATUSES, jobView } from '../core/jobs/job';
import type { JobStore } from '../core/jobs/job-store';

const listQuery = z.strictObject({
  status: z.enum(JOB_STATUSES, { message: `Must be one of ${JOB_STATUSES.join(', ')}` }).optional(),
  limit: pageLimit(20, 100),
  cursor: z.string().min(1, 'Must not be empty').optional(),
});

export const makeListJobs = ({ jobs }: { jobs: Pick<JobStore, 'listForKey'> }) =>
  apiHandler(async (event) => {
    const query = parseQuery(event, listQuery);
    const page = await jobs.listForKey(callerApiKeyId(event), query);
    return json(200, { jobs: page.items.map((job) => jobView(job)), next_cursor: page.nextCursor });
  });

export const handler = makeListJobs({ jobs: jobsFromEnv() });
