import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiClient, type RuntimeProcess, startRuntimeProcess } from '../support/runtime-process';
import { synthesizeForTests } from '../support/synth';

const stateDir = mkdtempSync(join(tmpdir(), 'mailer-e2e-'));
let runtime: RuntimeProcess;
let api: ReturnType<typeof apiClient>;

beforeAll(async () => {
  runtime = await startRuntimeProcess({ stateDir });
  api = apiClient(runtime.url, runtime.apiKey);
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

  it('serves every method of the synthesized template through its function', async () => {
    const { template } = synthesizeForTests();
    const methods = Object.values(template.Resources).filter(
      (resource) => resource.Type === 'AWS::ApiGateway::Method',
    );
    const paths: Record<string, string> = {
      GET: '/nonprofits/nobody@example.org',
      PUT: '/nonprofits/nobody@example.org',
      DELETE: '/nonprofits/nobody@example.org',
      POST: '/nonprofits',
    };
    for (const method of methods) {
      const httpMethod = String(method.Properties?.HttpMethod);
      const response = await api(
        httpMethod,
        paths[httpMethod] ?? '/',
        httpMethod === 'GET' || httpMethod === 'DELETE' ? undefined : {},
      );
      expect(response.body.message, `${httpMethod}`).not.toBe('Missing Authentication Token');
      expect(response.body.code, `${httpMethod}`).toEqual(expect.any(String));
    }
    expect((await api('GET', '/nonprofits')).status).toBe(200);
  });
});
