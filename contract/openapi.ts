import { z } from 'zod';
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiResponsesObject } from 'zod-openapi';
import { auditQuery } from '../lambdas/core/audit/audit';
import { scopeOfRoute } from '../lambdas/core/auth/scopes';
import {
  idempotencyKey,
  jobId,
  jobListQuery,
  previewEmailRequest,
  sendEmailRequest,
} from '../lambdas/core/jobs/job';
import { jobEmailsQuery } from '../lambdas/core/jobs/job-emails';
import { importQuery } from '../lambdas/core/nonprofits/import';
import {
  emailAddress,
  newNonprofit,
  nonprofitDetails,
  nonprofitListQuery,
} from '../lambdas/core/nonprofits/nonprofit';
import { personRequestQuery } from '../lambdas/core/people/person-requests';
import * as answer from '../lambdas/core/responses';
import { resumeRequest } from '../lambdas/core/sending/sending-controls';
import {
  liftQuery,
  manualSuppressionRequest,
  suppressionListQuery,
} from '../lambdas/core/suppressions/suppression';
import { unsubscribeQuery } from '../lambdas/core/suppressions/unsubscribe-token';
import { PACKAGE_VERSION } from '../lib/version';

/**
 * The published contract of the API: OpenAPI 3.1, rendered from the zod schemas the handlers
 * validate requests with and the answers' schemas in `lambdas/core/responses.ts`. `npm run openapi`
 * writes it to openapi.json, which is checked in and served at `GET /openapi.json`; a test fails when
 * the file is stale, or when its operations are not exactly the synthesized template's methods.
 */

const json = (schema: z.ZodType) => ({ content: { 'application/json': { schema } } });
const LOCATION = z.string().meta({ description: 'Where the created resource, or the job, is read.' });
const RETRY_AFTER = z.string().regex(/^\d+$/).meta({ description: 'Seconds to wait before trying again.' });
const IDEMPOTENT_REPLAYED = z
  .literal('true')
  .optional()
  .meta({ description: 'Present when an earlier request with the same Idempotency-Key did this.' });

const error = (description: string) => ({ description, ...json(answer.errorBody) });

/** What any route may answer beside its own: API Gateway's throttle and the unexpected. */
const common: ZodOpenApiResponsesObject = {
  '429': {
    description:
      "API Gateway's throttle (`Too Many Requests`: the key or the route is above its rate and burst) or quota (`Limit Exceeded`: the usage plan's requests per day); or the web ACL's per-address rate rule (`Too Many Requests`: this client address made more than `wafRequestsPerIp`, or `wafUnsubscribeRequestsPerIp` to `/unsubscribe`, in the window).",
    headers: z.object({ 'Retry-After': RETRY_AFTER }),
    ...json(answer.errorBody),
  },
  '413': error('The body is over 10 MB (API Gateway).'),
  '414': error('The URL is over 8,192 characters (API Gateway).'),
  '431': error('The request line and headers are over 10,240 bytes (API Gateway).'),
  '5XX': error('Something failed that is not the request: try again later.'),
};
/** What a route that needs an API key answers without a valid one, or to a key its scopes do not cover. */
const keyed: ZodOpenApiResponsesObject = {
  '403': error(
    'No `x-api-key` header, one sent twice, or one that is unknown or in no usage plan (`Forbidden`); or a key whose scopes do not cover the route: `message` names the scope it needs; or the web ACL blocked the request (`Forbidden`: an AWS managed rule matched it).',
  ),
};
/** What a public route answers when the web ACL blocks a request (unless `waf` is false). */
const wafBlocked: ZodOpenApiResponsesObject = {
  '403': error(
    'The web ACL blocked the request (`Forbidden`): an AWS managed rule matched it (a known bad input, an address on the IP reputation list).',
  ),
};
const badInput = {
  '400': error('The request is invalid: `details` names each problem (`VALIDATION_ERROR`).'),
};
const notFound = (what: string) => ({ '404': error(`${what} (\`NOT_FOUND\`).`) });
const conflict = (what: string) => ({ '409': error(`${what} (\`CONFLICT\`).`) });

/** Both health routes answer 200 while the system works and 503 when it does not, in their own shape. */
const healthAnswers = (schema: z.ZodType) => ({
  '200': { description: '`healthy` or `degraded`.', ...json(schema) },
  '503': { description: '`unhealthy`: a backend does not answer, or SES will not send.', ...json(schema) },
});

const emailPath = {
  path: z.object({ email: emailAddress.meta({ description: 'The address, percent-encoded.' }) }),
};
const jobPath = { path: z.object({ job_id: jobId }) };
/** The header, with the very schema the handlers read it with (`readIdempotencyKey`). */
const idempotencyHeader = (description: string) =>
  z.object({ 'Idempotency-Key': idempotencyKey.optional().meta({ description }) });

interface Route {
  method: 'get' | 'post' | 'put' | 'delete';
  path: string;
  operation: ZodOpenApiOperationObject;
  /** Public routes (monitors, email recipients) take no API key. */
  public?: boolean;
}

const routes: Route[] = [
  {
    method: 'post',
    path: '/nonprofits',
    operation: {
      operationId: 'createNonprofit',
      summary: 'Register a nonprofit',
      tags: ['nonprofits'],
      requestBody: { required: true, ...json(newNonprofit) },
      responses: {
        '201': {
          description: 'Registered.',
          headers: z.object({ Location: LOCATION }),
          ...json(answer.nonprofit),
        },
        ...badInput,
        ...conflict('A nonprofit with that email is registered'),
      },
    },
  },
  {
    method: 'post',
    path: '/nonprofits/import',
    operation: {
      operationId: 'importNonprofits',
      summary: 'Register up to 1,000 nonprofits at once',
      description:
        'A JSON array of the bodies `POST /nonprofits` takes, or CSV with the header `email,name,address` (RFC 4180, UTF-8 with or without a BOM). Each row is checked as a single create; the answer lists every row.',
      tags: ['nonprofits'],
      requestParams: { query: importQuery },
      requestBody: {
        required: true,
        content: {
          'application/json': { schema: z.array(newNonprofit).max(1000) },
          'text/csv': { schema: z.string() },
        },
      },
      responses: {
        '200': { description: 'Every row and what became of it.', ...json(answer.importResult) },
        ...badInput,
      },
    },
  },
  {
    method: 'get',
    path: '/nonprofits',
    operation: {
      operationId: 'listNonprofits',
      summary: 'List nonprofits, by domain if given',
      tags: ['nonprofits'],
      requestParams: { query: nonprofitListQuery },
      responses: { '200': { description: 'A page.', ...json(answer.nonprofitPage) }, ...badInput },
    },
  },
  {
    method: 'get',
    path: '/nonprofits/{email}',
    operation: {
      operationId: 'getNonprofit',
      summary: 'Read a nonprofit',
      tags: ['nonprofits'],
      requestParams: emailPath,
      responses: {
        '200': { description: 'The nonprofit.', ...json(answer.nonprofit) },
        ...badInput,
        ...notFound('No nonprofit with that email'),
      },
    },
  },
  {
    method: 'put',
    path: '/nonprofits/{email}',
    operation: {
      operationId: 'updateNonprofit',
      summary: "Replace a nonprofit's name and address",
      tags: ['nonprofits'],
      requestParams: emailPath,
      requestBody: { required: true, ...json(nonprofitDetails) },
      responses: {
        '200': { description: 'The nonprofit as updated.', ...json(answer.nonprofit) },
        ...badInput,
        ...notFound('No nonprofit with that email'),
      },
    },
  },
  {
    method: 'delete',
    path: '/nonprofits/{email}',
    operation: {
      operationId: 'deleteNonprofit',
      summary: 'Delete a nonprofit',
      tags: ['nonprofits'],
      requestParams: emailPath,
      responses: {
        '204': { description: 'Deleted.' },
        ...badInput,
        ...notFound('No nonprofit with that email'),
      },
    },
  },
  {
    method: 'post',
    path: '/send-email',
    operation: {
      operationId: 'sendEmail',
      summary: 'Send a templated email to many nonprofits',
      tags: ['jobs'],
      requestParams: {
        header: idempotencyHeader(
          'Makes the request safe to repeat: a later request with the same key (per API key) and body answers the job the first made, with `Idempotent-Replayed: true`; another body under it is a 409.',
        ),
      },
      requestBody: { required: true, ...json(sendEmailRequest) },
      responses: {
        '202': {
          description: 'The job and its recipients are stored; the emails are on their way.',
          headers: z.object({ Location: LOCATION, 'Idempotent-Replayed': IDEMPOTENT_REPLAYED }),
          ...json(answer.jobAccepted),
        },
        ...badInput,
        ...notFound('Recipients that are not registered nonprofits, each named in `details`'),
        ...conflict('The Idempotency-Key was used for another body'),
        '429': {
          description:
            "The key's recipient quota for the UTC day (`QUOTA_EXCEEDED`, with what remains and when it resets), or API Gateway's throttle or quota.",
          headers: z.object({ 'Retry-After': RETRY_AFTER }),
          content: { 'application/json': { schema: z.union([answer.quotaExceeded, answer.errorBody]) } },
        },
      },
    },
  },
  {
    method: 'post',
    path: '/send-email/preview',
    operation: {
      operationId: 'previewEmail',
      summary: 'Render a job without sending it',
      tags: ['jobs'],
      requestParams: {
        header: idempotencyHeader(
          'Checked as `/send-email` checks it (a malformed key is a 400); a preview stores nothing.',
        ),
      },
      requestBody: { required: true, ...json(previewEmailRequest) },
      responses: {
        '200': { description: 'Up to five emails, rendered.', ...json(answer.jobPreview) },
        ...badInput,
        ...notFound('Recipients that are not registered nonprofits, each named in `details`'),
      },
    },
  },
  {
    method: 'get',
    path: '/jobs',
    operation: {
      operationId: 'listJobs',
      summary: 'Your jobs, newest first',
      tags: ['jobs'],
      requestParams: { query: jobListQuery },
      responses: { '200': { description: 'A page.', ...json(answer.jobPage) }, ...badInput },
    },
  },
  ...(['/jobs/{job_id}', '/jobs/{job_id}/status'] as const).map(
    (path): Route => ({
      method: 'get',
      path,
      operation: {
        operationId: path.endsWith('/status') ? 'getJobStatus' : 'getJob',
        summary: path.endsWith('/status') ? "A job's progress" : 'A job: its progress and what it sends',
        tags: ['jobs'],
        requestParams: jobPath,
        responses: {
          '200': { description: 'The job.', ...json(answer.job) },
          ...badInput,
          ...notFound('No job of yours with that id'),
        },
      },
    }),
  ),
  {
    method: 'get',
    path: '/jobs/{job_id}/emails',
    operation: {
      operationId: 'listJobEmails',
      summary: 'Every recipient of a job, with its outcome',
      tags: ['jobs'],
      requestParams: { ...jobPath, query: jobEmailsQuery },
      responses: {
        '200': { description: 'A page.', ...json(answer.jobEmailsPage) },
        ...badInput,
        ...notFound('No job of yours with that id'),
        '410': error(
          "The job's emails are no longer kept: its ledger and recipient list are removed `ledgerRetentionDays` after it starts; `GET /jobs/{job_id}` still has its counts (`GONE`).",
        ),
      },
    },
  },
  {
    method: 'post',
    path: '/jobs/{job_id}/cancel',
    operation: {
      operationId: 'cancelJob',
      summary: 'Stop a running job',
      tags: ['jobs'],
      requestParams: jobPath,
      responses: {
        '202': {
          description: 'The cancel is recorded.',
          headers: z.object({ Location: LOCATION }),
          ...json(answer.jobCancelled),
        },
        ...badInput,
        ...notFound('No job of yours with that id'),
        ...conflict('The job has ended'),
      },
    },
  },
  {
    method: 'post',
    path: '/jobs/{job_id}/retry',
    operation: {
      operationId: 'retryJob',
      summary: "Send a completed job's retryable failures again",
      tags: ['jobs'],
      requestParams: {
        ...jobPath,
        header: idempotencyHeader(
          'Makes the retry safe to repeat: the same key on the same job answers 202 with `Idempotent-Replayed: true` and the job as it is now, without retrying again.',
        ),
      },
      responses: {
        '202': {
          description: 'The failures are queued again.',
          headers: z.object({ Location: LOCATION, 'Idempotent-Replayed': IDEMPOTENT_REPLAYED }),
          ...json(answer.jobRetried),
        },
        ...badInput,
        ...notFound('No job of yours with that id'),
        ...conflict('Nothing to retry, or the job is running or was cancelled'),
        '410': error("The job's content and recipient list are past `ledgerRetentionDays` (`GONE`)."),
      },
    },
  },
  {
    method: 'get',
    path: '/usage',
    operation: {
      operationId: 'getUsage',
      summary: "Your key's use today and its limits",
      tags: ['usage'],
      responses: { '200': { description: 'Use and limits.', ...json(answer.usage) } },
    },
  },
  {
    method: 'get',
    path: '/sending',
    operation: {
      operationId: 'getSending',
      summary: 'Whether sending is on, and the reputation window the guard reads',
      description:
        "SES's switch for this deployment (the account's and the stack's configuration set's), the reputation guard's last pause and resume, the window's sent emails, hard bounces and complaints with their rates (from the last resume on), and the thresholds at which the guard turns sending off.",
      tags: ['sending'],
      responses: {
        '200': { description: 'The switch, the window and the thresholds.', ...json(answer.sending) },
      },
    },
  },
  {
    method: 'post',
    path: '/sending/resume',
    operation: {
      operationId: 'resumeSending',
      summary: 'Turn sending back on after a pause',
      description:
        'Turns the configuration set on again and records who and why; the window starts again from now. While the window is still over a threshold, only with `force`.',
      tags: ['sending'],
      requestBody: { required: true, ...json(resumeRequest) },
      responses: {
        '200': { description: 'Sending is on again.', ...json(answer.sending) },
        ...badInput,
        '409': {
          description:
            'Sending is not paused (`CONFLICT`), or the window is still over a threshold and `force` was not given (`window` says how).',
          content: { 'application/json': { schema: z.union([answer.sendingStillOver, answer.errorBody]) } },
        },
      },
    },
  },
  {
    method: 'get',
    path: '/audit',
    operation: {
      operationId: 'listAuditRecords',
      summary: 'The audit trail: changes to the registry, the suppression list and the sender, newest first',
      tags: ['audit'],
      requestParams: { query: auditQuery },
      responses: { '200': { description: 'A page.', ...json(answer.auditPage) }, ...badInput },
    },
  },
  {
    method: 'post',
    path: '/people/{email}/export',
    operation: {
      operationId: 'requestExport',
      summary: "Export what is on record about an address (a person's access request)",
      description:
        'Runs in the background: the registry entry, the suppression record, and every email on record to the address or with a copy to it. Read the result at the `Location` for 7 days.',
      tags: ['people'],
      requestParams: emailPath,
      responses: {
        '202': {
          description: 'The request is recorded and queued.',
          headers: z.object({ Location: LOCATION }),
          ...json(answer.personRequestAccepted),
        },
        ...badInput,
        '409': {
          description:
            'An export of the address is under way (`CONFLICT`): `request_id` and `Location` name it.',
          headers: z.object({ Location: LOCATION }),
          ...json(answer.requestUnderWay),
        },
      },
    },
  },
  {
    method: 'post',
    path: '/people/{email}/erasure',
    operation: {
      operationId: 'requestErasure',
      summary: "Erase an address from every table (a person's erasure request)",
      description:
        'At once: the address is suppressed (`erased`) and its registry entry deleted. In the background, once the jobs running now have ended: the address, its name and postal address are removed from every table, the address replaced by its keyed hash (`erased:…`) so counts stay exact. It stays suppressed without being stored: a later registry entry, import or cc of it is suppressed again.',
      tags: ['people'],
      requestParams: emailPath,
      responses: {
        '202': {
          description: 'The address is suppressed and its entry deleted; the rest is queued.',
          headers: z.object({ Location: LOCATION }),
          ...json(answer.personRequestAccepted),
        },
        ...badInput,
        '409': {
          description:
            'An erasure of the address is under way (`CONFLICT`): `request_id` and `Location` name it.',
          headers: z.object({ Location: LOCATION }),
          ...json(answer.requestUnderWay),
        },
      },
    },
  },
  {
    method: 'get',
    path: '/people/requests/{request_id}',
    operation: {
      operationId: 'getPersonRequest',
      summary: "A person request's progress and, once completed, its result (a page of emails)",
      tags: ['people'],
      requestParams: {
        path: z.object({ request_id: z.uuid() }),
        query: personRequestQuery,
      },
      responses: {
        '200': { description: 'The request.', ...json(answer.personRequest) },
        ...badInput,
        ...notFound('No request with that id (requests are kept 7 days)'),
      },
    },
  },
  {
    method: 'get',
    path: '/suppressions',
    operation: {
      operationId: 'listSuppressions',
      summary: 'Addresses that get no email',
      tags: ['suppressions'],
      requestParams: { query: suppressionListQuery },
      responses: { '200': { description: 'A page.', ...json(answer.suppressionPage) }, ...badInput },
    },
  },
  {
    method: 'get',
    path: '/suppressions/{email}',
    operation: {
      operationId: 'getSuppression',
      summary: 'Is an address suppressed?',
      tags: ['suppressions'],
      requestParams: emailPath,
      responses: {
        '200': { description: 'It is, and why.', ...json(answer.suppression) },
        ...badInput,
        ...notFound('The address is not suppressed'),
      },
    },
  },
  {
    method: 'put',
    path: '/suppressions/{email}',
    operation: {
      operationId: 'suppressAddress',
      summary: 'Suppress an address by hand',
      tags: ['suppressions'],
      requestParams: emailPath,
      requestBody: { required: false, ...json(manualSuppressionRequest) },
      responses: {
        '201': { description: 'Suppressed.', ...json(answer.suppression) },
        '200': { description: 'It was suppressed already: the record kept.', ...json(answer.suppression) },
        ...badInput,
      },
    },
  },
  {
    method: 'delete',
    path: '/suppressions/{email}',
    operation: {
      operationId: 'liftSuppression',
      summary: 'Lift a suppression',
      tags: ['suppressions'],
      requestParams: { ...emailPath, query: liftQuery },
      responses: {
        '204': { description: 'Lifted.' },
        ...badInput,
        ...notFound('The address is not suppressed'),
        ...conflict(
          "The lift lacks what the address's record takes (`details` names it): an unsubscribe or a complaint needs force=true and a reason of at least 10 characters recording the person's renewed consent; a bounce or a manual suppression, a reason",
        ),
      },
    },
  },
  ...(['get', 'post'] as const).map(
    (method): Route => ({
      method,
      path: '/unsubscribe',
      public: true,
      operation: {
        operationId: method === 'get' ? 'showUnsubscribe' : 'unsubscribe',
        summary:
          method === 'get'
            ? "The page an email's unsubscribe link opens"
            : "One-click unsubscribe (RFC 8058), or the page's button",
        tags: ['suppressions'],
        requestParams: { query: unsubscribeQuery },
        ...(method === 'post'
          ? {
              requestBody: {
                required: false,
                content: {
                  'application/x-www-form-urlencoded': {
                    schema: z.string().meta({ example: 'List-Unsubscribe=One-Click' }),
                  },
                },
              },
            }
          : {}),
        responses: {
          '200': {
            description: method === 'get' ? 'A page with one button.' : 'Unsubscribed: a page saying so.',
            content: { 'text/html': { schema: z.string() } },
          },
          '400': error(
            'Not a link this deployment made, or not all of it, or one sealed under a version of its secret retired by two rotations.',
          ),
        },
      },
    }),
  ),
  {
    method: 'get',
    path: '/health',
    public: true,
    operation: {
      operationId: 'getHealth',
      summary: 'Whether the system works (the verdict only)',
      description:
        'Answers anyone, without a key: the verdict and when it was reached. What was checked, and why a check failed, is in `GET /health/details`.',
      tags: ['operations'],
      responses: healthAnswers(answer.healthVerdict),
    },
  },
  {
    method: 'get',
    path: '/health/details',
    operation: {
      operationId: 'getHealthDetails',
      summary: 'Every health check, with a stable code for each that could not be made',
      tags: ['operations'],
      responses: healthAnswers(answer.health),
    },
  },
  {
    method: 'get',
    path: '/openapi.json',
    public: true,
    operation: {
      operationId: 'getOpenApi',
      summary: 'This document',
      tags: ['operations'],
      responses: {
        '200': { description: 'The OpenAPI 3.1 document.', ...json(z.record(z.string(), z.unknown())) },
      },
    },
  },
];

/** Each route's operations, keyed `METHOD /path` as the template's routes are. */
export const OPERATIONS = routes.map(({ method, path }) => `${method.toUpperCase()} ${path}`);

export function openApiDocument() {
  const paths: Record<string, Record<string, ZodOpenApiOperationObject>> = {};
  for (const route of routes) {
    paths[route.path] ??= {};
    const scope = route.public ? undefined : scopeOfRoute(route.method.toUpperCase(), route.path);
    (paths[route.path] as Record<string, ZodOpenApiOperationObject>)[route.method] = {
      ...route.operation,
      // A public route needs no key; a keyed one names the scope its key needs (OpenAPI 3.1's roles
      // of a non-OAuth scheme; `operator` covers every scope).
      security: scope ? [{ apiKey: [scope] }] : [],
      // The route's own answers first (the document lists them first) and over the common ones.
      responses: {
        ...route.operation.responses,
        ...(route.public ? wafBlocked : keyed),
        ...common,
        ...route.operation.responses,
      },
    };
  }
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'nonprofit-mailer',
      version: PACKAGE_VERSION,
      description:
        'A registry of nonprofits and templated bulk email to them. Every route but the public ones takes an API key in `x-api-key`, and a key may call only the routes its scopes cover (each operation names the scope it needs in `security`; `operator` covers all); errors are JSON with a `message`.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [
      {
        url: 'https://{restApiId}.execute-api.{region}.amazonaws.com/v1',
        description: 'A deployment (the ApiUrl output of `cdk deploy`)',
        variables: { restApiId: { default: 'abc123defg' }, region: { default: 'us-east-1' } },
      },
      { url: 'http://127.0.0.1:3000/v1', description: 'The local runtime (`npm start`)' },
    ],
    security: [{ apiKey: [] }],
    tags: [
      { name: 'nonprofits', description: 'The registry' },
      { name: 'jobs', description: 'Sending, and following what was sent' },
      { name: 'suppressions', description: 'Who gets no email' },
      { name: 'usage', description: 'Quotas' },
      { name: 'audit', description: 'Who changed what, and why' },
      { name: 'people', description: "A person's data on request" },
      { name: 'sending', description: 'The reputation guard: sending paused and resumed' },
      { name: 'operations', description: 'Health and this contract' },
    ],
    components: {
      securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' } },
    },
    paths,
  });
}
