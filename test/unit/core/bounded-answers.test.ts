import { describe, expect, it } from 'vitest';
import { makeListJobEmails } from '../../../lambdas/api/list-job-emails';
import { handler as sendEmail } from '../../../lambdas/api/send-email';
import { MAX_DETAILS } from '../../../lambdas/core/http';
import type { DeliveryRecord } from '../../../lambdas/core/jobs/deliveries';
import type { JobRecord } from '../../../lambdas/core/jobs/job';
import { MAX_PAGE_BYTES } from '../../../lambdas/core/jobs/job-emails';
import { apiEvent, jsonBody, lambdaContext } from '../../support/api-events';

/** What API Gateway would carry: the proxy result as Lambda serializes it. */
const responseBytes = (result: unknown) => Buffer.byteLength(JSON.stringify(result), 'utf8');

describe('answers stay far below Lambda’s 6 MB response limit', () => {
  it('lists at most 20 problems of a body with 300,000 unknown fields, and says how many there were', async () => {
    const body = Object.fromEntries(Array.from({ length: 300_000 }, (_, n) => [`extra${n}`, n]));
    const result = await sendEmail(
      apiEvent({
        body: JSON.stringify({ ...body, emails: ['a@example.org'], template: 'Hi' }),
        requestContext: { identity: { apiKeyId: 'key-1' } } as never,
      }),
      lambdaContext,
    );

    expect(result.statusCode).toBe(400);
    const answer = jsonBody(result);
    expect(answer.details).toHaveLength(MAX_DETAILS);
    expect(answer.details_total).toBe(300_000);
    expect(responseBytes(result)).toBeLessThan(10_000);
  });

  it('bounds a 100 KB template of {} to 20 problems, each quoting little', async () => {
    const result = await sendEmail(
      apiEvent({
        body: JSON.stringify({ emails: ['a@example.org'], template: '{}'.repeat(50_000) }),
        requestContext: { identity: { apiKeyId: 'key-1' } } as never,
      }),
      lambdaContext,
    );
    expect(result.statusCode).toBe(400);
    expect(jsonBody(result).details_total).toBe(50_000);
    expect(responseBytes(result)).toBeLessThan(20_000);
  });

  it('ends a page of large emails early, in bytes, and its cursor continues where it stopped', async () => {
    const JOB_ID = '0b5c2f44-9a55-4f4e-8a1e-6a1f1d3c2b10';
    const recipients = Array.from({ length: 40 }, (_, n) => `r${String(n).padStart(2, '0')}@example.org`);
    // Quotes and backslashes double when the page is escaped into the proxy response.
    const body = '"\\'.repeat(60_000);
    const job = { job_id: JOB_ID, api_key_id: 'key-1', total_emails: recipients.length } as JobRecord;
    const list = makeListJobEmails({
      jobs: { get: async () => job },
      contents: {
        content: async () => ({ template: 'x', subject: null, cc: [], accepted_at: '' }),
        recipients: async (_, offset, count) => recipients.slice(offset, offset + count),
      },
      deliveries: {
        getMany: async (_, wanted) =>
          new Map(
            wanted.map((recipient) => [
              recipient,
              {
                job_id: JOB_ID,
                recipient,
                status: 'sent',
                cc: [],
                message_id: `ses-${recipient}`,
                attempts: 1,
                processed_at: '2026-11-27T10:00:00.000Z',
              } satisfies DeliveryRecord,
            ]),
          ),
      },
      rendered: {
        getMany: async (_, wanted) =>
          new Map(wanted.map((recipient) => [recipient, { recipient, subject: 's', body }])),
        getSnapshots: async () => new Map(),
      },
      settings: { maxRenderedBytes: 262_144, defaultSubject: '(no subject)' },
    });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const result = await list(
        apiEvent({
          pathParameters: { job_id: JOB_ID },
          queryStringParameters: { limit: '100', ...(cursor ? { cursor } : {}) },
          requestContext: { identity: { apiKeyId: 'key-1' } } as never,
        }),
        lambdaContext,
      );
      expect(result.statusCode).toBe(200);
      expect(responseBytes(result)).toBeLessThan(MAX_PAGE_BYTES + 500_000);
      const page = jsonBody(result) as { emails: { to: string }[]; next_cursor: string | null };
      seen.push(...page.emails.map((email) => email.to));
      cursor = page.next_cursor;
      pages++;
    } while (cursor);

    expect(pages).toBeGreaterThan(2);
    expect(seen).toEqual(recipients);
  });
});
