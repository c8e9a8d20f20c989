import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type AttributeValue, ListTablesCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTE_SCOPES } from '../../lambdas/core/auth/scopes';
import { STORED_LINK } from '../../lambdas/core/jobs/render-email';
import { textFooter } from '../../lambdas/core/templates/footer';
import { readApiModel } from '../../local/api-model';
import { dynamoDbClient } from '../../local/dynamodb';
import { readInbox } from '../../local/ses';
import { LOCAL_SENDER } from '../../local/synth';
import { IntrinsicResolver } from '../../local/template';
import { NONPROFITS_API_CONTEXT } from '../support/e2e-contexts';
import { toldEvents } from '../support/events';
import { apiClient, type RuntimeProcess, startRuntimeProcess, waitFor } from '../support/runtime-process';
import { synthesizeForTests } from '../support/synth';

const stateDir = mkdtempSync(join(tmpdir(), 'mailer-e2e-'));
let runtime: RuntimeProcess;
let api: ReturnType<typeof apiClient>;
/** A key that may only send, and one that may only read the registry: what the operator's scopes are split into. */
let send: ReturnType<typeof apiClient>;
let reader: ReturnType<typeof apiClient>;
const CONTEXT = NONPROFITS_API_CONTEXT;

beforeAll(async () => {
  runtime = await startRuntimeProcess({ stateDir, context: CONTEXT });
  api = apiClient(runtime.url, runtime.apiKey);
  send = apiClient(runtime.url, runtime.keys.get('sender')?.value);
  reader = apiClient(runtime.url, runtime.keys.get('reader')?.value);
});

afterAll(async () => {
  await runtime?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

const uniqueDomain = () => `${randomUUID().slice(0, 8)}.example.org`;

describe('the nonprofits API over HTTP on the local runtime', () => {
  it('creates a nonprofit and answers 409 for the same email in another letter case', async () => {
    const domain = uniqueDomain();
    const created = await api('POST', '/nonprofits', {
      email: `Info@${domain.toUpperCase()}`,
      name: 'Example',
      address: '1 Main St',
    });

    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      email: `info@${domain}`,
      domain,
      name: 'Example',
      created_at: expect.any(String),
    });
    expect(created.headers.get('location')).toBe(`/nonprofits/info%40${domain}`);

    const duplicate = await api('POST', '/nonprofits', {
      email: `INFO@${domain}`,
      name: 'Other',
      address: 'Elsewhere',
    });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body).toMatchObject({
      code: 'CONFLICT',
      message: `Nonprofit with email info@${domain} already exists.`,
    });
    expect((await api('GET', `/nonprofits/info@${domain}`)).body).toMatchObject({ name: 'Example' });
  });

  it('answers every kind of bad input with a 400 naming the problem, storing nothing', async () => {
    const domain = uniqueDomain();
    const bad = [
      '{"email": ',
      '[1, 2]',
      { email: `a@${domain}` },
      { email: 'nope', name: 'A', address: 'B' },
      { email: `a@${domain}`, name: 5, address: 'B' },
      { email: `a@${domain}`, name: 'x'.repeat(201), address: 'B' },
      { email: `a@${domain}`, name: 'A', address: '' },
      { email: `a@${domain}`, name: 'A', address: 'B', extra: 1 },
    ];
    for (const body of bad) {
      const response = await api('POST', '/nonprofits', body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body).toMatchObject({ message: expect.any(String), code: 'VALIDATION_ERROR' });
    }
    expect((await api('GET', `/nonprofits?domain=${domain}`)).body).toEqual({
      nonprofits: [],
      next_cursor: null,
    });
    expect((await api('GET', '/nonprofits?limit=0')).status).toBe(400);
    expect((await api('GET', '/nonprofits?cursor=bm90LWEtY3Vyc29y')).status).toBe(400);
  });

  it('refuses an address past the RFCs at every door that takes a new one (64 before the @, 63 a label), storing nothing', async () => {
    const domain = uniqueDomain();
    const longLocal = `${'a'.repeat(65)}@${domain}`;
    const longLabel = `info@${'b'.repeat(64)}.${domain}`;
    const fine = `${'a'.repeat(64)}@${domain}`;
    const rfc5321 = /before the @ must be at most 64 characters \(RFC 5321\)/;
    const rfc1035 = /domain must be at most 63 characters \(RFC 1035\)/;
    for (const [address, rule] of [
      [longLocal, rfc5321],
      [longLabel, rfc1035],
    ] as const) {
      const doors = [
        await api('POST', '/nonprofits', { email: address, name: 'A', address: 'B' }),
        await api('PUT', `/nonprofits/${address}`, { name: 'A', address: 'B' }),
        await api('POST', '/send-email', { emails: [address], template: 'Hello {name}' }),
        await api('POST', '/send-email', { emails: [fine], cc: [address], template: 'Hello {name}' }),
        await api('PUT', `/suppressions/${address}`, { note: 'asked by letter' }),
      ];
      for (const response of doors) {
        expect(response.status, JSON.stringify(response.body)).toBe(400);
        expect(JSON.stringify(response.body)).toMatch(rule);
      }
      expect((await api('GET', `/suppressions/${address}`)).status).toBe(404);
    }
    // An import reports each row it refused, with the same message, and registers the rest.
    const imported = await api('POST', '/nonprofits/import', [
      { email: longLocal, name: 'A', address: 'B' },
      { email: longLabel, name: 'A', address: 'B' },
      { email: fine, name: 'Fine', address: 'C' },
    ]);
    expect(imported.body).toMatchObject({ created: 1, invalid: 2 });
    expect(JSON.stringify(imported.body)).toMatch(rfc5321);
    expect(JSON.stringify(imported.body)).toMatch(rfc1035);
    expect((await api('GET', `/nonprofits?domain=${domain}`)).body.nonprofits).toEqual([
      expect.objectContaining({ email: fine }),
    ]);
    // The plan allows one import every two seconds per key: the CSV import below must not meet this one's.
    await sleep(2_100);
  });

  it('reads, updates and deletes by email, with 404 once it is gone', async () => {
    const email = `contact@${uniqueDomain()}`;
    await api('POST', '/nonprofits', { email, name: 'Before', address: 'Old St' });

    expect((await api('GET', `/nonprofits/${encodeURIComponent(email)}`)).body).toMatchObject({
      email,
      name: 'Before',
    });
    const updated = await api('PUT', `/nonprofits/${email}`, { name: 'After', address: 'New St' });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ email, name: 'After', address: 'New St' });
    expect((await api('DELETE', `/nonprofits/${email}`)).status).toBe(204);
    expect((await api('GET', `/nonprofits/${email}`)).status).toBe(404);
    expect((await api('PUT', `/nonprofits/${email}`, { name: 'A', address: 'B' })).status).toBe(404);
    expect((await api('DELETE', `/nonprofits/${email}`)).status).toBe(404);
  });

  it('filters by domain and pages across several pages with the cursor', async () => {
    const domain = uniqueDomain();
    const emails = Array.from({ length: 7 }, (_, n) => `member${n}@${domain}`);
    for (const email of emails) await api('POST', '/nonprofits', { email, name: email, address: 'A' });
    await api('POST', '/nonprofits', {
      email: `member0@${uniqueDomain()}`,
      name: 'Other domain',
      address: 'A',
    });

    const seen: string[] = [];
    let path = `/nonprofits?domain=${domain}&limit=3`;
    for (let page = 0; page < 5; page++) {
      const { status, body } = await api('GET', path);
      expect(status).toBe(200);
      seen.push(...(body.nonprofits as { email: string }[]).map((item) => item.email));
      if (body.next_cursor === null) break;
      path = `/nonprofits?domain=${domain}&limit=3&cursor=${encodeURIComponent(String(body.next_cursor))}`;
    }
    expect(seen).toEqual(emails);
  });

  it("answers API Gateway's own 403s without a valid key and for unknown routes", async () => {
    const anonymous = apiClient(runtime.url);
    expect(await anonymous('GET', '/nonprofits')).toMatchObject({
      status: 403,
      body: { message: 'Forbidden' },
    });
    const wrongKey = apiClient(runtime.url, 'x'.repeat(40));
    expect(await wrongKey('GET', '/nonprofits')).toMatchObject({
      status: 403,
      body: { message: 'Forbidden' },
    });
    expect(await api('GET', '/nowhere')).toMatchObject({
      status: 403,
      body: { message: 'Missing Authentication Token' },
    });
    expect(await api('PATCH', '/nonprofits')).toMatchObject({
      status: 403,
      body: { message: 'Missing Authentication Token' },
    });
  });

  it('imports 500 nonprofits from a CSV file, and changes nothing when the same file is imported again', async () => {
    const domain = uniqueDomain();
    const csv = [
      'email,name,address',
      ...Array.from({ length: 500 }, (_, n) => `member${n}@${domain},"Member ${n}, Inc.","${n} Main St"`),
    ].join('\r\n');
    const post = async () => {
      const response = await fetch(`${runtime.url}/nonprofits/import`, {
        method: 'POST',
        headers: { 'x-api-key': runtime.apiKey, 'content-type': 'text/csv' },
        body: `\uFEFF${csv}`,
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const first = await post();
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ created: 500, updated: 0, exists: 0, invalid: 0 });
    expect((await api('GET', `/nonprofits/member7@${domain}`)).body).toMatchObject({
      name: 'Member 7, Inc.',
      address: '7 Main St',
    });
    const listed = await api('GET', `/nonprofits?domain=${domain}&limit=100`);
    expect(listed.body.nonprofits).toHaveLength(100);
    // The plan allows one import every two seconds per key.
    await sleep(2_100);
    const again = await post();
    expect(again.body).toMatchObject({ created: 0, updated: 0, exists: 500, invalid: 0 });
  });

  it('pauses sending when complaints reach the threshold, holds a job meanwhile, and sends it once after a resume', async () => {
    const domain = uniqueDomain();
    const complainer = `complaint+guard-${randomUUID().slice(0, 8)}@simulator.amazonses.com`;
    const first = Array.from({ length: 5 }, (_, n) => `guard-first-${n}@${domain}`);
    for (const email of [complainer, ...first])
      expect(
        (await api('POST', '/nonprofits', { email, name: 'Guarded', address: '5 Guard St' })).status,
      ).toBe(201);

    // Whatever happens below, sending is on again for the tests after this one.
    try {
      await pausedByComplaint([complainer, ...first]);
      await heldUntilResumed();
    } catch (error) {
      await api('POST', '/sending/resume', { reason: 'the test is over, sending goes on', force: true });
      throw error;
    }
  });

  /** One complaint in six emails: 17 %, over the 10 % threshold. The local SES reports it a moment after. */
  async function pausedByComplaint(recipients: string[]) {
    const complained = await send('POST', '/send-email', { emails: recipients, template: 'Hi {name}' });
    expect(complained.status).toBe(202);
    const paused = await waitFor(
      () => api('GET', '/sending'),
      (answer) => answer.body.sending === 'paused',
    );
    expect(paused.body).toMatchObject({
      reason: expect.stringContaining('The reputation guard paused sending: complaint rate'),
      guard: { paused: true, window: { complained: 1 } },
      window: { complained: 1, over: expect.stringContaining('complaint rate') },
      thresholds: { min_volume: 5, pause_complaint_rate: 0.1 },
    });
    const health = await waitFor(
      () => api('GET', '/health/details'),
      (answer) => answer.status === 503,
    );
    expect(JSON.stringify(health.body)).toContain('The reputation guard paused sending');
    // Told on the bus once, with the window that tripped it.
    const pausedAt = (paused.body.guard as { paused_at: string }).paused_at;
    const told = await toldEvents(runtime.eventsUrl, 'Sending Paused', { occurred_at: pausedAt });
    expect(told).toHaveLength(1);
    expect(told[0]?.detail).toMatchObject({
      reason: expect.stringContaining('complaint rate'),
      window: { complained: 1 },
    });
  }

  /** The guard's test, once sending is paused: a job waits, a resume needs force, then it goes once. */
  async function heldUntilResumed() {
    const domain = uniqueDomain();
    const held = Array.from({ length: 5 }, (_, n) => `guard-held-${n}@${domain}`);
    for (const email of held)
      expect(
        (await api('POST', '/nonprofits', { email, name: 'Guarded', address: '5 Guard St' })).status,
      ).toBe(201);
    const jobStatus = async (jobId: string) => (await send('GET', `/jobs/${jobId}/status`)).body;
    // A job sent meanwhile waits: SES refuses the configuration set's emails, nothing is failed.
    const waiting = String(
      (await send('POST', '/send-email', { emails: held, template: 'Hi {name}' })).body.job_id,
    );
    // Long enough for its emails to be tried and put back at least once (after 1 s, then 2 s, …).
    await sleep(3_000);
    expect(await jobStatus(waiting)).toMatchObject({ sent: 0, failed: 0 });

    // The window is still over: a resume needs force.
    const refused = await api('POST', '/sending/resume', { reason: 'the complaint was looked into' });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'CONFLICT', window: { complained: 1 } });
    const resumed = await api('POST', '/sending/resume', {
      reason: 'the complaint was looked into',
      force: true,
    });
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({
      sending: 'enabled',
      guard: { paused: false, resume_reason: 'the complaint was looked into' },
    });

    const resumedAt = (resumed.body.guard as { resumed_at: string }).resumed_at;
    expect(await toldEvents(runtime.eventsUrl, 'Sending Resumed', { occurred_at: resumedAt })).toEqual([
      expect.objectContaining({
        detail: expect.objectContaining({ reason: 'the complaint was looked into' }),
      }),
    ]);

    const done = await waitFor(
      () => jobStatus(waiting),
      (job) => job.status === 'completed',
    );
    expect(done).toMatchObject({ total_emails: 5, sent: 5, failed: 0 });
    const mailed = (await readInbox(runtime.inboxUrl)).flatMap((email) => email.destination.to);
    for (const address of held) expect(mailed.filter((to) => to === address)).toHaveLength(1);
  }

  it('never lifts a suppression by deleting, re-creating or re-importing the nonprofit, and records each change', async () => {
    const email = `comes-back@${uniqueDomain()}`;
    const nonprofit = { email, name: 'Comes Back', address: '3 Loop Rd' };
    expect((await api('POST', '/nonprofits', nonprofit)).status).toBe(201);
    expect((await api('PUT', `/suppressions/${email}`, { note: 'asked by letter' })).status).toBe(201);
    expect((await api('DELETE', `/nonprofits/${email}`)).status).toBe(204);
    expect((await api('POST', '/nonprofits', nonprofit)).status).toBe(201);
    const imported = await api('POST', '/nonprofits/import?on_conflict=update', [
      { ...nonprofit, name: 'Comes Back Again' },
    ]);
    expect(imported.body).toMatchObject({ updated: 1 });
    expect((await api('GET', `/suppressions/${email}`)).body).toMatchObject({ reason: 'manual' });
    const trail = await api('GET', `/audit?email=${encodeURIComponent(email)}`);
    expect((trail.body.records as { action: string }[]).map(({ action }) => action)).toEqual([
      'nonprofit.created',
      'nonprofit.deleted',
      'suppression.added',
      'nonprofit.created',
    ]);
    // The import is one record, with its counts and no address.
    const imports = await api('GET', '/audit?action=nonprofits.imported&limit=1');
    expect(imports.body.records).toMatchObject([{ actor: { source: 'api' }, details: { updated: 1 } }]);
  });

  it('shows the key and job behind a suppression only to a key that may read the list', async () => {
    const address = `least-disclosure@${uniqueDomain()}`;
    const suppressor = apiClient(runtime.url, runtime.keys.get('suppressor')?.value);
    const first = await api('PUT', `/suppressions/${address}`, { note: 'by the operator' });
    expect(first.status).toBe(201);
    expect(first.body).toHaveProperty('api_key_id');
    // Already suppressed: the record kept is answered, without whose it was.
    const again = await suppressor('PUT', `/suppressions/${address}`);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ email: address, reason: 'manual', note: 'by the operator' });
    expect(again.body).not.toHaveProperty('api_key_id');
    expect((await suppressor('GET', `/suppressions/${address}`)).status).toBe(403);
    expect((await suppressor('DELETE', `/suppressions/${address}?reason=added+by+mistake`)).status).toBe(204);
  });

  it('exports a nonprofit mailed by two jobs (once as a cc), then erases it from every table; it stays suppressed, as a cc and once re-imported', async () => {
    const tag = randomUUID().slice(0, 8);
    const domain = uniqueDomain();
    const person = {
      email: `erase-me-${tag}@${domain}`,
      name: `Erin Erased ${tag}`,
      address: `9 Forget Way ${tag}`,
    };
    const other = { email: `stays-${tag}@${domain}`, name: 'Stays Put', address: '1 Kept Rd' };
    for (const nonprofit of [person, other])
      expect((await api('POST', '/nonprofits', nonprofit)).status).toBe(201);
    // Sent with the operator's key: POST /send-email's per-key throttle (5 a minute) is the sender key's
    // to spend in the tests after this one.
    const completed = async (body: Record<string, unknown>) => {
      const accepted = await api('POST', '/send-email', { template: 'Dear {name} at {address}', ...body });
      expect(accepted.status).toBe(202);
      return waitFor(
        async () => (await api('GET', `/jobs/${String(accepted.body.job_id)}/status`)).body,
        (job) => job.status === 'completed',
      );
    };
    await completed({ emails: [person.email] });
    await completed({ emails: [other.email], cc: [person.email] });
    const readRequest = (id: unknown) =>
      waitFor(
        async () => (await api('GET', `/people/requests/${String(id)}`)).body,
        (request) => request.status === 'completed',
      );

    // The link in the person's email, used only after the erasure.
    const sentToPerson = (await readInbox(runtime.inboxUrl)).find((email) =>
      email.destination.to.includes(person.email),
    );
    const link = /^<([^>]+)>/.exec(
      sentToPerson?.headers?.find((header) => header.name === 'List-Unsubscribe')?.value ?? '',
    )?.[1];
    expect(link).toBeDefined();

    const exported = await api('POST', `/people/${encodeURIComponent(person.email)}/export`);
    expect(exported.status).toBe(202);
    const result = (await readRequest(exported.body.request_id)).result as { emails: { role: string }[] };
    expect(result.emails.map(({ role }) => role).sort()).toEqual(['cc', 'recipient']);

    const erasure = await api('POST', `/people/${encodeURIComponent(person.email)}/erasure`);
    expect(erasure.status).toBe(202);
    // A second erasure while the first runs answers the first.
    const again = await api('POST', `/people/${encodeURIComponent(person.email)}/erasure`);
    expect(again).toMatchObject({ status: 409, body: { request_id: erasure.body.request_id } });
    // An export meanwhile would keep what the erasure takes away: refused, naming the erasure.
    const exportMeanwhile = await api('POST', `/people/${encodeURIComponent(person.email)}/export`);
    expect(exportMeanwhile).toMatchObject({
      status: 409,
      body: { request_id: erasure.body.request_id, kind: 'erasure' },
    });
    // Waits on real time: an erasure's start is delayed ERASURE_START_DELAY_SECONDS (5 s, a
    // constant: jobs accepted in that window must be found running), and the runtime's jobs end first.
    const erased = await readRequest(erasure.body.request_id);
    expect(erased).not.toHaveProperty('email');
    expect(erased.address_key).toMatch(/^erased:[0-9a-f]{64}$/);

    // Still suppressed, under its key alone: a cc of it gets no copy (the job keeps the key in its
    // place), and its unsubscribe link, from an email sent before, stores nothing.
    const inboxBefore = (await readInbox(runtime.inboxUrl)).length;
    await completed({ emails: [other.email], cc: [person.email] });
    expect((await api('GET', `/suppressions/${encodeURIComponent(person.email)}`)).body).toMatchObject({
      email: person.email,
      reason: 'erased',
    });
    const clicked = await fetch(link ?? '', { method: 'POST', body: 'List-Unsubscribe=One-Click' });
    expect(clicked.status).toBe(200);

    // An independent client reads every table of DynamoDB Local: nothing of the person is left.
    const raw = dynamoDbClient(runtime.dynamoDbEndpoint);
    const { TableNames = [] } = await raw.send(new ListTablesCommand({}));
    const everything: unknown[] = [];
    for (const TableName of TableNames) {
      let ExclusiveStartKey: Record<string, AttributeValue> | undefined;
      do {
        const page = await raw.send(new ScanCommand({ TableName, ExclusiveStartKey, ConsistentRead: true }));
        everything.push(...(page.Items ?? []));
        ExclusiveStartKey = page.LastEvaluatedKey;
      } while (ExclusiveStartKey);
    }
    raw.destroy();
    const stored = JSON.stringify(everything);
    expect(stored).toContain(other.email);
    for (const value of [person.email, person.name, person.address]) expect(stored).not.toContain(value);

    // Re-imported, its entry is made again and its email suppressed.
    const reimported = await api('POST', '/nonprofits/import', [person]);
    expect(reimported.body).toMatchObject({ created: 1 });
    expect(await completed({ emails: [person.email] })).toMatchObject({ suppressed: 1, sent: 0 });
    const mailed = (await readInbox(runtime.inboxUrl)).slice(inboxBefore);
    expect(
      mailed.flatMap((email) => [...email.destination.to, ...(email.destination.cc ?? [])]),
    ).not.toContain(person.email);
  });

  it('answers a valid request on every route the template declares, in its documented shape', async () => {
    const { template } = synthesizeForTests();
    const declared = readApiModel(template, new IntrinsicResolver(template))
      .routes.map((route) => `${route.method} ${route.resourcePath}`)
      .sort();
    const email = `every-route@${uniqueDomain()}`;
    // Suppressed by hand on its own: `email` unsubscribes through its link.
    const quiet = `every-route-quiet@${uniqueDomain()}`;
    const ids: { job?: string; ccJob?: string; link?: string; request?: string } = {};
    // Enough recipients that a job to them is still running a moment after it is accepted, to be cancelled.
    const crowdDomain = uniqueDomain();
    const crowd = Array.from({ length: 50 }, (_, n) => `every-route-${n}@${crowdDomain}`);
    /** The one-click link of the email the job sent this address, once the local SES has it. */
    const unsubscribeLink = async (address: string) => {
      for (let attempt = 0; attempt < 200; attempt++) {
        const email = (await readInbox(runtime.inboxUrl)).find((found) =>
          found.destination.to.includes(address),
        );
        const header = email?.headers?.find((found) => found.name === 'List-Unsubscribe')?.value;
        const link = /^<([^>]+)>/.exec(header ?? '')?.[1];
        if (link) return link;
        await sleep(100);
      }
      throw new Error(`No email with an unsubscribe link reached ${address}`);
    };
    const jobPath = () => `/jobs/${ids.job}`;
    /**
     * One valid call per route, in an order that makes each possible (create before read, delete
     * last), with the status and the fields the README documents. A route the template gains
     * without a call here fails this test.
     */
    const calls: [route: string, call: () => ReturnType<typeof api>, status: number, fields: string[]][] = [
      [
        'POST /nonprofits',
        () => api('POST', '/nonprofits', { email, name: 'Every Route', address: '1 Route St' }),
        201,
        ['email', 'domain', 'name', 'address', 'created_at', 'updated_at'],
      ],
      [
        'POST /nonprofits/import',
        () =>
          api(
            'POST',
            '/nonprofits/import',
            crowd.map((address, n) => ({ email: address, name: `Imported ${n}`, address: '3 Route St' })),
          ),
        200,
        ['created', 'updated', 'exists', 'invalid', 'rows'],
      ],
      ['GET /nonprofits', () => api('GET', '/nonprofits?limit=5'), 200, ['nonprofits', 'next_cursor']],
      [
        'GET /nonprofits/{email}',
        () => api('GET', `/nonprofits/${email}`),
        200,
        ['email', 'name', 'address'],
      ],
      [
        'PUT /nonprofits/{email}',
        () => api('PUT', `/nonprofits/${email}`, { name: 'Every Route Renamed', address: '2 Route St' }),
        200,
        ['email', 'name', 'address', 'updated_at'],
      ],
      [
        'POST /send-email/preview',
        async () => {
          const answer = await send('POST', '/send-email/preview', {
            emails: [email],
            template: 'Dear {name}',
            subject: 'Hi {name}',
          });
          expect(answer.body.previews).toEqual([
            {
              to: email,
              cc: [],
              subject: 'Hi Every Route Renamed',
              body: `Dear Every Route Renamed${textFooter(LOCAL_SENDER, email, STORED_LINK)}`,
              html: null,
            },
          ]);
          return answer;
        },
        200,
        ['total_emails', 'worst_case_bytes', 'max_rendered_email_bytes', 'previews'],
      ],
      [
        'POST /send-email',
        async () => {
          const answer = await send('POST', '/send-email', {
            emails: [email],
            template: 'Dear {name}',
            subject: 'Hi {name}',
          });
          ids.job = String(answer.body.job_id);
          // And a copy of another's email, for the export below to find.
          const copied = await send('POST', '/send-email', {
            emails: [crowd[0]],
            cc: [email],
            template: 'Dear {name}',
            subject: 'Copied',
          });
          expect(copied.status).toBe(202);
          ids.ccJob = String(copied.body.job_id);
          return answer;
        },
        202,
        ['job_id', 'status', 'total_emails', 'message'],
      ],
      ['GET /jobs', () => send('GET', '/jobs?limit=5'), 200, ['jobs', 'next_cursor']],
      [
        'GET /jobs/{job_id}',
        () => send('GET', jobPath()),
        200,
        [
          'job_id',
          'status',
          'total_emails',
          'sent',
          'failed',
          'suppressed',
          'bounced',
          'transient_bounces',
          'complained',
          'created_at',
          'template',
          'subject',
          'cc',
        ],
      ],
      [
        'GET /jobs/{job_id}/status',
        () => send('GET', `${jobPath()}/status`),
        200,
        [
          'job_id',
          'status',
          'total_emails',
          'sent',
          'failed',
          'suppressed',
          'created_at',
          'started_at',
          'completed_at',
        ],
      ],
      [
        'GET /jobs/{job_id}/emails',
        () => send('GET', `${jobPath()}/emails`),
        200,
        ['job_id', 'emails', 'next_cursor'],
      ],
      [
        'POST /jobs/{job_id}/cancel',
        async () => {
          const accepted = await send('POST', '/send-email', { emails: crowd, template: 'Dear {name}' });
          return send('POST', `/jobs/${String(accepted.body.job_id)}/cancel`);
        },
        202,
        ['job_id', 'status', 'sent', 'cancelled', 'cancel_requested_at', 'message'],
      ],
      [
        // A job with nothing to retry: the accepted retry (202) needs failures SES refused, which
        // job-control.test.ts makes with a sandboxed account; here the route's refusal is checked.
        'POST /jobs/{job_id}/retry',
        async () => {
          await waitFor(
            async () => (await send('GET', `${jobPath()}/status`)).body.status,
            (status) => status === 'completed',
          );
          const answer = await send('POST', `${jobPath()}/retry`);
          expect(answer.body.message).toBe(`Job ${ids.job} has no failures to retry.`);
          return answer;
        },
        409,
        ['message', 'code'],
      ],
      [
        'GET /unsubscribe',
        async () => {
          ids.link = await unsubscribeLink(email);
          const page = await fetch(ids.link);
          // An HTML page, not JSON: its status is what this table checks.
          return { status: page.status, headers: page.headers, body: {} };
        },
        200,
        [],
      ],
      [
        'POST /unsubscribe',
        async () => {
          const done = await fetch(ids.link ?? '', { method: 'POST', body: 'List-Unsubscribe=One-Click' });
          return { status: done.status, headers: done.headers, body: {} };
        },
        200,
        [],
      ],
      [
        'PUT /suppressions/{email}',
        () => api('PUT', `/suppressions/${quiet}`, { note: 'asked by phone' }),
        201,
        ['email', 'reason', 'suppressed_at', 'api_key_id', 'note'],
      ],
      [
        'GET /suppressions',
        () => api('GET', '/suppressions?reason=manual&limit=5'),
        200,
        ['suppressions', 'next_cursor'],
      ],
      [
        'GET /suppressions/{email}',
        () => api('GET', `/suppressions/${quiet}`),
        200,
        ['email', 'reason', 'suppressed_at'],
      ],
      [
        'DELETE /suppressions/{email}',
        () =>
          api('DELETE', `/suppressions/${quiet}?reason=${encodeURIComponent('asked by phone to return')}`),
        204,
        [],
      ],
      [
        // The lift just made, and the add before it.
        'GET /audit',
        async () => {
          const answer = await api('GET', `/audit?email=${encodeURIComponent(quiet)}&limit=2`);
          expect(answer.body.records).toMatchObject([
            { action: 'suppression.lifted', reason: 'asked by phone to return' },
            { action: 'suppression.added', reason: 'asked by phone' },
          ]);
          return answer;
        },
        200,
        ['records', 'next_cursor'],
      ],
      [
        'POST /people/{email}/export',
        async () => {
          await waitFor(
            async () => (await send('GET', `/jobs/${ids.ccJob}/status`)).body.status,
            (status) => status === 'completed',
          );
          const answer = await api('POST', `/people/${encodeURIComponent(email)}/export`);
          ids.request = String(answer.body.request_id);
          expect(answer.headers.get('location')).toBe(`/people/requests/${ids.request}`);
          return answer;
        },
        202,
        ['request_id', 'status', 'message'],
      ],
      [
        // Worked in the background: read until completed, then both emails are listed.
        'GET /people/requests/{request_id}',
        async () => {
          const path = `/people/requests/${ids.request}`;
          await waitFor(
            async () => (await api('GET', path)).body.status,
            (status) => status === 'completed',
          );
          const answer = await api('GET', path);
          expect(answer.body.result).toMatchObject({
            nonprofit: { email, name: 'Every Route Renamed' },
            suppression: { email, reason: 'unsubscribed' },
            next_cursor: null,
          });
          const emails = (answer.body.result as { emails: Record<string, unknown>[] }).emails;
          expect(emails).toHaveLength(2);
          expect(emails).toEqual(
            expect.arrayContaining([
              expect.objectContaining({
                job_id: ids.job,
                role: 'recipient',
                subject: 'Hi {name}',
                status: 'sent',
              }),
              expect.objectContaining({ job_id: ids.ccJob, role: 'cc', subject: 'Copied', status: 'sent' }),
            ]),
          );
          return answer;
        },
        200,
        ['request_id', 'kind', 'email', 'status', 'requested_at', 'completed_at', 'progress', 'result'],
      ],
      [
        // An address held nowhere: the erasure is accepted (and completes with nothing erased).
        'POST /people/{email}/erasure',
        () =>
          api(
            'POST',
            `/people/${encodeURIComponent(`nobody-${randomUUID().slice(0, 8)}@${uniqueDomain()}`)}/erasure`,
          ),
        202,
        ['request_id', 'status', 'message'],
      ],
      [
        'GET /sending',
        () => api('GET', '/sending'),
        200,
        ['sending', 'reason', 'guard', 'window', 'thresholds'],
      ],
      [
        // Sending is on: the resume's refusal is checked here; job-control.test.ts pauses and resumes.
        'POST /sending/resume',
        async () => {
          const answer = await api('POST', '/sending/resume', { reason: 'the list was cleaned' });
          expect(answer.body.message).toBe('Sending is not paused.');
          return answer;
        },
        409,
        ['message', 'code'],
      ],
      ['GET /health', () => apiClient(runtime.url)('GET', '/health'), 200, ['status', 'checked_at']],
      ['GET /health/details', () => api('GET', '/health/details'), 200, ['status', 'checks', 'version']],
      ['GET /usage', () => send('GET', '/usage'), 200, ['day', 'resets_at', 'recipients', 'requests']],
      [
        'GET /openapi.json',
        async () => {
          // Without a key: the contract is read before a key is had. It is the checked-in document.
          const answer = await apiClient(runtime.url)('GET', '/openapi.json');
          expect(answer.body).toEqual(
            JSON.parse(readFileSync(new URL('../../openapi.json', import.meta.url), 'utf8')),
          );
          return answer;
        },
        200,
        ['openapi', 'info', 'paths', 'components'],
      ],
      ['DELETE /nonprofits/{email}', () => api('DELETE', `/nonprofits/${email}`), 204, []],
    ];
    expect(calls.map(([route]) => route).sort()).toEqual(declared);
    for (const [route, call, status, fields] of calls) {
      const answer = await call();
      expect(answer.status, `${route}: ${JSON.stringify(answer.body)}`).toBe(status);
      for (const field of fields) expect(answer.body, `${route} answers ${field}`).toHaveProperty(field);
    }
    expect(runtime.output.join('\n')).not.toMatch(/\[gateway\] 50[24]/);

    // A key of one narrow scope is let into its routes: reading the registry.
    expect((await reader('GET', '/nonprofits?limit=1')).status).toBe(200);
    // Each keyed route again, with a key whose scopes do not cover it: 403, naming the scope, and
    // its function never runs (its answer would be another status or shape).
    const model = readApiModel(template, new IntrinsicResolver(template));
    for (const route of model.routes.filter((each) => each.apiKeyRequired)) {
      const needed = ROUTE_SCOPES[`${route.method} ${route.resourcePath}`];
      const [denied, name] = needed === 'send' ? [reader, 'reader'] : [send, 'sender'];
      const path = route.resourcePath.replaceAll(/\{[^}]+\}/g, (parameter) =>
        parameter === '{job_id}' ? String(ids.job) : email,
      );
      const answer = await denied(route.method, path, route.method === 'GET' ? undefined : {});
      expect(answer.status, `${route.method} ${route.resourcePath} with the ${name} key`).toBe(403);
      expect(answer.body).toEqual({
        message: `This API key (${name}) may not call ${route.method} ${route.resourcePath}: it needs the ${needed} scope.`,
      });
    }
    // Each function's calls were held to its role's policy from the template (local IAM): none was
    // refused, so every function has the grants it uses, as deployed.
    expect(runtime.output.filter((line) => line.includes('[iam] AccessDenied'))).toEqual([]);
  });
});
