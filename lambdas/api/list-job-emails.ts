// GET /jobs/{job_id}/emails?status=&limit=&cursor=: handler --> job store + deliveries + render snapshots (DynamoDB)

import {
  deliveriesFromEnv,
  jobContentsFromEnv,
  jobsFromEnv,
  RENDER_SETTINGS,
  renderedEmailsFromEnv,
} from '../core/adapters';
import { decodeCursor, encodeCursor } from '../core/cursor';
import { apiHandler, callerApiKeyId, json, parsePathParameter, parseQuery } from '../core/http';
import { jobId } from '../core/jobs/job';
import { jobEmailsQuery, type ListJobEmailsDependencies, listJobEmails } from '../core/jobs/job-emails';
import { findOwnedJob, type JobStore } from '../core/jobs/job-store';
import { readSettings } from '../core/settings';
import * as z from '../core/zod';

export const makeListJobEmails = (deps: ListJobEmailsDependencies & { jobs: Pick<JobStore, 'get'> }) =>
  apiHandler(async (event) => {
    const id = parsePathParameter(event, 'job_id', jobId);
    const query = parseQuery(event, jobEmailsQuery);
    const job = await findOwnedJob(deps.jobs, id, callerApiKeyId(event));
    const scope = `emails:${id}:${query.status ?? '*'}`;
    const position = z.strictObject({ offset: z.number().int().min(0).max(job.total_emails) });
    const offset = query.cursor ? decodeCursor(query.cursor, scope, position).offset : 0;
    const page = await listJobEmails(deps, job, { status: query.status, limit: query.limit, offset });
    return json(200, {
      job_id: job.job_id,
      emails: page.items,
      next_cursor: page.nextOffset === null ? null : encodeCursor({ offset: page.nextOffset }, scope),
    });
  });

export const handler = makeListJobEmails({
  jobs: jobsFromEnv(),
  contents: jobContentsFromEnv(),
  deliveries: deliveriesFromEnv(),
  rendered: renderedEmailsFromEnv(),
  settings: readSettings(RENDER_SETTINGS),
});
