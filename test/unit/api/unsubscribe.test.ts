import type { APIGatewayProxyEvent } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { makeUnsubscribe } from '../../../lambdas/api/unsubscribe';
import type { FeedbackNoted } from '../../../lambdas/core/jobs/deliveries';
import type { JobRecord } from '../../../lambdas/core/jobs/job';
import { signUnsubscribeToken } from '../../../lambdas/core/suppressions/unsubscribe-token';
import { apiEvent, lambdaContext } from '../../support/api-events';

const SECRET = 's'.repeat(64);
const JOB_ID = '7b0bfb6c-7e0e-4a8b-9d4e-1c7a4d3f2e10';

/**
 * The handler with fakes: the suppression list and the ledger record what they are given; one job
 * exists, sent by key-1. A failing ledger throws.
 */
function handler({ failingLedger = false } = {}) {
  const add = vi.fn(async (entry) => ({ suppression: { ...entry, suppressed_at: 'now' }, created: true }));
  const recordFeedback = vi.fn(async (): Promise<FeedbackNoted> => {
    if (failingLedger) throw new Error('DynamoDB is unavailable');
    return 'recorded';
  });
  const jobs = {
    get: async (id: string) =>
      id === JOB_ID ? ({ job_id: id, api_key_id: 'key-1' } as JobRecord) : undefined,
  };
  return {
    add,
    recordFeedback,
    handle: makeUnsubscribe({
      suppressions: { add },
      jobs,
      ledger: { recordFeedback },
      secret: { versions: async () => ({ current: SECRET }) },
      now: () => new Date('2026-12-04T10:00:00Z'),
    }),
  };
}

const invoke = (handle: ReturnType<typeof makeUnsubscribe>, event: APIGatewayProxyEvent) =>
  handle(event, lambdaContext);

const token = signUnsubscribeToken(SECRET, { email: 'info@example.org', jobId: JOB_ID });

/** The one-click POST a mailbox provider makes with a link's token (RFC 8058). */
const oneClick = (linkToken: string) =>
  apiEvent({
    httpMethod: 'POST',
    queryStringParameters: { token: linkToken },
    body: 'List-Unsubscribe=One-Click',
  });

describe('GET|POST /unsubscribe', () => {
  it('shows a page with one button on GET, the address masked and escaped, and suppresses nothing', async () => {
    const { add, recordFeedback, handle } = handler();
    // An apostrophe is valid in an address's local part, and markup in an HTML attribute or text.
    const quoted = signUnsubscribeToken(SECRET, { email: "'brien@example.org", jobId: JOB_ID });
    const result = await invoke(
      handle,
      apiEvent({ httpMethod: 'GET', queryStringParameters: { token: quoted } }),
    );
    expect(result.statusCode).toBe(200);
    expect(result.headers?.['content-type']).toBe('text/html; charset=utf-8');
    expect(result.headers?.['content-security-policy']).toContain("default-src 'none'");
    // Masked: whoever holds the link sees no more of the address than its first letters.
    expect(result.body).toContain('&#39;•••@e•••.org');
    expect(result.body).not.toContain("'•••");
    expect(result.body).not.toContain('brien');
    expect(result.body).toContain('<form method="post"');
    expect(add).not.toHaveBeenCalled();
    expect(recordFeedback).not.toHaveBeenCalled();
  });

  it('suppresses the address named in the token on POST, with its job and the API key that sent it', async () => {
    const { add, recordFeedback, handle } = handler();
    const result = await invoke(handle, oneClick(token));
    expect(result.statusCode).toBe(200);
    expect(add).toHaveBeenCalledWith({
      email: 'info@example.org',
      reason: 'unsubscribed',
      job_id: JOB_ID,
      api_key_id: 'key-1',
    });
    // And notes it on the email's ledger entry, once per reader (the id), counted on its job.
    expect(recordFeedback).toHaveBeenCalledWith(JOB_ID, 'info@example.org', {
      kind: 'unsubscribe',
      feedbackId: 'unsubscribe:info@example.org',
      detail: 'Unsubscribed by the link in this email',
      at: '2026-12-04T10:00:00.000Z',
      // This click suppressed the reader: the job counts it (a later click on another copy would not).
      countOnJob: true,
    });
  });

  it("notes a cc reader's unsubscribe on the recipient's entry, and still answers 200 when the note fails", async () => {
    const { add, recordFeedback, handle } = handler({ failingLedger: true });
    const copy = signUnsubscribeToken(SECRET, {
      email: 'board@example.net',
      jobId: JOB_ID,
      recipient: 'info@example.org',
    });
    const result = await invoke(handle, oneClick(copy));
    // The person is unsubscribed: that is what the page says, and what matters.
    expect(result.statusCode).toBe(200);
    expect(add).toHaveBeenCalledWith(expect.objectContaining({ email: 'board@example.net' }));
    expect(recordFeedback).toHaveBeenCalledWith(
      JOB_ID,
      'info@example.org',
      expect.objectContaining({
        feedbackId: 'unsubscribe:board@example.net',
        detail: 'Unsubscribed by the link in the copy to board@example.net',
      }),
    );
  });

  it('leaves no note naming an erased cc reader whose link, from an email sent before, is used', async () => {
    const { add, recordFeedback, handle } = handler();
    // The suppression list finds the address erased: suppressed under its key, nothing stored.
    add.mockImplementation(async (entry) => ({
      suppression: { email: entry.email, reason: 'erased', suppressed_at: 'before' },
      created: false,
    }));
    const copy = signUnsubscribeToken(SECRET, {
      email: 'gone@example.net',
      jobId: JOB_ID,
      recipient: 'info@example.org',
    });
    const result = await invoke(handle, oneClick(copy));
    expect(result.statusCode).toBe(200);
    expect(recordFeedback).not.toHaveBeenCalled();
  });

  it('still suppresses when the job is gone, without a key', async () => {
    const { add, handle } = handler();
    const orphan = signUnsubscribeToken(SECRET, {
      email: 'info@example.org',
      jobId: 'f1d2c3b4-0000-4000-8000-000000000000',
    });
    const result = await invoke(
      handle,
      apiEvent({ httpMethod: 'POST', queryStringParameters: { token: orphan } }),
    );
    expect(result.statusCode).toBe(200);
    expect(add).toHaveBeenCalledWith({
      email: 'info@example.org',
      reason: 'unsubscribed',
      job_id: 'f1d2c3b4-0000-4000-8000-000000000000',
    });
  });

  it('answers 400 in JSON for a missing, forged or cut token, suppressing nothing', async () => {
    const { add, handle } = handler();
    const forged = signUnsubscribeToken('f'.repeat(64), { email: 'victim@example.org' });
    for (const parameters of [null, { token: '' }, { token: forged }, { token: token.slice(0, -1) }]) {
      const result = await invoke(
        handle,
        apiEvent({ httpMethod: 'POST', queryStringParameters: parameters }),
      );
      expect(result.statusCode).toBe(400);
      expect(JSON.parse(result.body)).toMatchObject({ code: 'VALIDATION_ERROR' });
    }
    expect(add).not.toHaveBeenCalled();
  });
});
