import { describe, expect, it } from 'vitest';
import { makeGetJob } from '../../../lambdas/api/get-job';
import { makeListJobEmails } from '../../../lambdas/api/list-job-emails';
import { makeListJobs } from '../../../lambdas/api/list-jobs';
import type { DeliveryRecord } from '../../../lambdas/core/jobs/deliveries';
import type { JobRecord } from '../../../lambdas/core/jobs/job';
import { STORED_LINK } from '../../../lambdas/core/jobs/render-email';
import type { RenderedCopy } from '../../../lambdas/core/jobs/rendered-emails';
import { textFooter } from '../../../lambdas/core/templates/footer';
import { apiEvent, jsonBody, lambdaContext } from '../../support/api-events';

const JOB_ID = '0b5c2f44-9a55-4f4e-8a1e-6a1f1d3c2b10';
const job: JobRecord = {
  job_id: JOB_ID,
  api_key_id: 'key-1',
  status: 'processing',
  total_emails: 3,
  sent: 1,
  failed: 1,
  remaining: 1,
  created_at: '2026-11-27T10:00:00.000Z',
  updated_at: '2026-11-27T10:00:01.000Z',
  started_at: '2026-11-27T10:00:01.000Z',
  request_hash: 'hash',
  active: 'yes',
};
const content = {
  template: 'Hi {name}',
  subject: null,
  cc: ['cc@example.org'],
  accepted_at: '2026-11-27T10:00:00.000Z',
};
const recipients = ['a@example.org', 'b@example.org', 'c@example.org'];
const outcomes = new Map<string, DeliveryRecord>([
  [
    'a@example.org',
    {
      job_id: JOB_ID,
      recipient: 'a@example.org',
      status: 'sent',
      cc: content.cc,
      message_id: 'ses-a',
      copy_ids: { 'cc@example.org': 'ses-a-cc' },
      attempts: 1,
      // SES took it a moment before the batch's outcomes were written: sent_at is the former.
      handed_over_at: '2026-11-27T10:00:00.500Z',
      processed_at: '2026-11-27T10:00:01.000Z',
      feedback: [
        { type: 'transient_bounce', at: '2026-11-27T10:05:00.000Z', detail: 'Transient/MailboxFull' },
      ],
    },
  ],
  [
    'b@example.org',
    {
      job_id: JOB_ID,
      recipient: 'b@example.org',
      status: 'failed',
      cc: content.cc,
      attempts: 5,
      error: 'gone',
      processed_at: '2026-11-27T10:00:02.000Z',
      // Rendered from a snapshot (the values it was sent with), not stored whole.
      snapshot: 'snap-1',
    },
  ],
  // Claimed by a consumer that is sending it now: no outcome yet.
  ['c@example.org', { job_id: JOB_ID, recipient: 'c@example.org', status: 'sending', attempts: 1 }],
]);
/** Rendered copies, kept apart from the outcomes: c's was stored before it was sent. */
const copies = new Map<string, RenderedCopy>([
  ['a@example.org', { recipient: 'a@example.org', subject: '(no subject)', body: 'Hi A' }],
  ['c@example.org', { recipient: 'c@example.org', subject: '(no subject)', body: 'Hi C' }],
]);
const jobs = {
  get: async (id: string) => (id === JOB_ID ? job : undefined),
  listForKey: async (apiKeyId: string) => ({ items: apiKeyId === 'key-1' ? [job] : [], nextCursor: null }),
};
const contents = {
  content: async (id: string) => (id === JOB_ID ? content : undefined),
  recipients: async (_: string, offset: number, count: number) => recipients.slice(offset, offset + count),
};
const deliveries = {
  getMany: async (_: string, wanted: readonly string[]) =>
    new Map([...outcomes].filter(([recipient]) => wanted.includes(recipient))),
};
const rendered = {
  getMany: async (_: string, wanted: readonly string[]) =>
    new Map([...copies].filter(([recipient]) => wanted.includes(recipient))),
  getSnapshots: async (_: string, ids: readonly string[]) =>
    new Map(
      ids.includes('snap-1')
        ? [
            [
              'snap-1',
              { id: 'snap-1', nonprofits: { 'b@example.org': { name: 'Bee & Co', address: '2 Hive Rd' } } },
            ],
          ]
        : [],
    ),
};
const settings = {
  maxRenderedBytes: 256 * 1024,
  defaultSubject: '(no subject)',
  senderName: 'Acme Relief',
  senderPostalAddress: '1 Main St',
};

const asKey = (apiKeyId: string, overrides: Parameters<typeof apiEvent>[0] = {}) =>
  apiEvent({ ...overrides, requestContext: { identity: { apiKeyId } } as never });

describe('GET /jobs/{job_id}', () => {
  const get = makeGetJob({ jobs, contents });

  it("answers the owner with the job's progress", async () => {
    const result = await get(
      asKey('key-1', { resource: '/jobs/{job_id}', pathParameters: { job_id: JOB_ID } }),
      lambdaContext,
    );
    expect(result.statusCode).toBe(200);
    expect(jsonBody(result)).toEqual({
      job_id: JOB_ID,
      status: 'processing',
      total_emails: 3,
      sent: 1,
      failed: 1,
      // A job recorded before suppression existed has no count of it: 0.
      suppressed: 0,
      // Nor of SES's reports, which came with its feedback: 0.
      bounced: 0,
      transient_bounces: 0,
      complained: 0,
      // Nor of unsubscribes by its links, noted since the audit trail.
      unsubscribed: 0,
      // Nor of cancels and retries, which came with job control.
      cancelled: 0,
      created_at: job.created_at,
      // Sent at once, not scheduled.
      send_at: null,
      started_at: job.started_at,
      completed_at: null,
      cancel_requested_at: null,
      retried: 0,
      retried_at: null,
      subject: null,
      cc: content.cc,
      template: 'Hi {name}',
      // A job from before HTML: text only.
      html: null,
    });
  });

  it("answers another API key's job as absent", async () => {
    const result = await get(
      asKey('key-2', { resource: '/jobs/{job_id}/status', pathParameters: { job_id: JOB_ID } }),
      lambdaContext,
    );
    expect(result.statusCode).toBe(404);
  });

  it('answers 403 when no API key identified the request', async () => {
    const result = await get(
      apiEvent({ pathParameters: { job_id: JOB_ID }, requestContext: { identity: {} } as never }),
      lambdaContext,
    );
    expect(result.statusCode).toBe(403);
  });

  it("takes the key the authorizer names, and refuses a request that sent x-api-key twice (the authorizer's cached answer may have let it through)", async () => {
    const authorized = (headers: Record<string, string[]>) =>
      apiEvent({
        resource: '/jobs/{job_id}',
        pathParameters: { job_id: JOB_ID },
        multiValueHeaders: headers,
        requestContext: {
          identity: {},
          authorizer: { keyId: 'key-1', scopes: 'send', principalId: 'key-1' },
        } as never,
      });
    expect((await get(authorized({ 'X-Api-Key': ['v'] }), lambdaContext)).statusCode).toBe(200);
    const twice = await get(authorized({ 'x-api-key': ['v', 'v'] }), lambdaContext);
    expect(twice.statusCode).toBe(403);
    expect(jsonBody(twice)).toMatchObject({ message: 'Forbidden' });
    expect(
      (await get(authorized({ 'x-api-key': ['v'], 'X-API-KEY': ['w'] }), lambdaContext)).statusCode,
    ).toBe(403);
  });
});

describe('GET /jobs', () => {
  const list = makeListJobs({ jobs });

  it("lists only the caller's jobs, without templates", async () => {
    const mine = jsonBody(await list(asKey('key-1'), lambdaContext));
    expect((mine.jobs as { job_id: string }[]).map((listed) => listed.job_id)).toEqual([JOB_ID]);
    expect(JSON.stringify(mine)).not.toContain('template');
    expect(jsonBody(await list(asKey('key-2'), lambdaContext))).toEqual({ jobs: [], next_cursor: null });
  });

  it('answers 400 for an unknown status', async () => {
    expect(
      (await list(asKey('key-1', { queryStringParameters: { status: 'done' } }), lambdaContext)).statusCode,
    ).toBe(400);
  });
});

describe('GET /jobs/{job_id}/emails', () => {
  const list = makeListJobEmails({ jobs, contents, deliveries, rendered, settings });
  const query = (parameters: Record<string, string>, apiKeyId = 'key-1') =>
    list(
      asKey(apiKeyId, { pathParameters: { job_id: JOB_ID }, queryStringParameters: parameters }),
      lambdaContext,
    );

  it("answers 410 once the job's ledger and recipient list are past their retention, its summary still kept", async () => {
    const expired = makeListJobEmails({
      jobs,
      contents: { ...contents, content: async () => undefined, recipients: async () => [] },
      deliveries,
      settings,
    });
    const answer = await expired(asKey('key-1', { pathParameters: { job_id: JOB_ID } }), lambdaContext);
    expect(answer.statusCode).toBe(410);
    expect(jsonBody(answer)).toMatchObject({
      code: 'GONE',
      message: expect.stringContaining('ledgerRetentionDays'),
    });
  });

  it('lists every recipient with its outcome and rendered copy, pending where it has none, page by page', async () => {
    const first = jsonBody(await query({ limit: '2' }));
    expect(first.emails).toEqual([
      {
        to: 'a@example.org',
        cc: content.cc,
        subject: '(no subject)',
        body: 'Hi A',
        html: null,
        status: 'sent',
        message_id: 'ses-a',
        attempts: 1,
        error: null,
        sent_at: '2026-11-27T10:00:00.500Z',
        feedback: [
          { type: 'transient_bounce', at: '2026-11-27T10:05:00.000Z', detail: 'Transient/MailboxFull' },
        ],
        copies: content.cc.map((to) => ({
          to,
          message_id: to === 'cc@example.org' ? 'ses-a-cc' : null,
          error: null,
        })),
      },
      {
        to: 'b@example.org',
        cc: content.cc,
        subject: '(no subject)',
        body: `Hi Bee & Co${textFooter(settings, 'b@example.org', STORED_LINK)}`,
        html: null,
        status: 'failed',
        message_id: null,
        attempts: 5,
        error: 'gone',
        sent_at: null,
        feedback: [],
        copies: content.cc.map((to) => ({ to, message_id: null, error: null })),
      },
    ]);
    const second = jsonBody(await query({ limit: '2', cursor: String(first.next_cursor) }));
    // A claim under way is still pending, with no message id nor copy until it has an outcome.
    expect(second).toEqual({
      job_id: JOB_ID,
      emails: [
        {
          to: 'c@example.org',
          cc: content.cc,
          subject: null,
          body: null,
          html: null,
          status: 'pending',
          message_id: null,
          attempts: 1,
          error: null,
          sent_at: null,
          feedback: [],
          copies: [],
        },
      ],
      next_cursor: null,
    });
  });

  it('shows no subject nor body when the deployment does not keep rendered emails', async () => {
    const withoutCopies = makeListJobEmails({ jobs, contents, deliveries, settings });
    const result = await withoutCopies(
      asKey('key-1', { pathParameters: { job_id: JOB_ID }, queryStringParameters: { limit: '1' } }),
      lambdaContext,
    );
    expect(jsonBody(result).emails).toEqual([
      expect.objectContaining({ to: 'a@example.org', status: 'sent', subject: null, body: null }),
    ]);
  });

  it('filters by status', async () => {
    expect(jsonBody(await query({ status: 'pending' })).emails).toEqual([
      expect.objectContaining({ to: 'c@example.org' }),
    ]);
  });

  it("answers 404 for another key's job and 400 for a cursor of another listing", async () => {
    expect((await query({}, 'key-2')).statusCode).toBe(404);
    const { next_cursor } = jsonBody(await query({ limit: '1' }));
    expect((await query({ status: 'sent', cursor: String(next_cursor) })).statusCode).toBe(400);
  });
});
