import { randomUUID } from 'node:crypto';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { type AuditQuery, auditQuery } from '../../lambdas/core/audit/audit';
import { DynamoAuditReader, DynamoAuditTrail } from '../../lambdas/core/audit/dynamodb/dynamo-audit-trail';
import { encodeCursor } from '../../lambdas/core/cursor';
import { ConflictError, NotFoundError, ValidationError } from '../../lambdas/core/errors';
import { DynamoNonprofitRepository } from '../../lambdas/core/nonprofits/dynamodb/dynamo-nonprofit-repository';
import { localDocumentClient, tableNamed } from '../support/local-tables';

const { client, destroy } = localDocumentClient();
const auditTable = tableNamed('DataAudit');
const audit = new DynamoAuditTrail({ client, tableName: auditTable, retentionDays: 400 });
const reader = new DynamoAuditReader({ client, tableName: auditTable });
const registry = new DynamoNonprofitRepository({ client, tableName: tableNamed('DataNonprofits'), audit });

afterAll(() => destroy());

const address = () => `${randomUUID().slice(0, 8)}@audit.example.org`;
const operator = { source: 'api', api_key_id: 'key-ops' } as const;
const list = (query: Partial<AuditQuery>) => reader.list({ limit: 50, ...query });

/** Every page of a query, following its cursors. */
async function allPages(query: Partial<AuditQuery>) {
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const page = await list({ ...query, ...(cursor ? { cursor } : {}) });
    pages.push(page.items.map((record) => record.id));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return pages;
}

describe('the audit trail against DynamoDB Local', () => {
  it('records each registry change in its transaction: who, which fields, and nothing for a refused change', async () => {
    const email = address();
    await registry.create({ email, name: 'Food Bank', address: '1 Main St' }, operator);
    await expect(
      registry.create({ email, name: 'Again', address: '2 Main St' }, operator),
    ).rejects.toBeInstanceOf(ConflictError);
    await registry.update(email, { name: 'Food Bank of Springfield', address: '1 Main St' }, operator);
    await registry.delete(email, { source: 'api', api_key_id: 'key-other' });
    await expect(registry.delete(email, operator)).rejects.toBeInstanceOf(NotFoundError);

    const { items } = await list({ email });
    expect(items.map(({ action }) => action)).toEqual([
      'nonprofit.deleted',
      'nonprofit.updated',
      'nonprofit.created',
    ]);
    expect(items[0]).toMatchObject({ email, actor: { source: 'api', api_key_id: 'key-other' } });
    expect(items[1]).toMatchObject({ actor: operator, details: { fields: ['name'] } });
    expect(items[2]?.at).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    // Each record lives for the retention: DynamoDB's TTL removes it then.
    const stored = await client.send(new ScanCommand({ TableName: auditTable }));
    const created = stored.Items?.find((item) => item.id === items[2]?.id);
    expect(created?.expires_at).toBe(Math.floor(Date.parse(String(created?.at)) / 1000) + 400 * 86_400);
  });

  it('pages newest first by address, by action, by both, and by time, with cursors that hold', async () => {
    // A clock of its own, a second a record, in a year no other test writes: the range holds these only.
    let clock = Date.parse('2031-01-01T00:00:00Z');
    const timed = new DynamoAuditTrail({
      client,
      tableName: auditTable,
      retentionDays: 400,
      now: () => {
        clock += 1_000;
        return new Date(clock);
      },
    });
    const since = new Date(clock).toISOString();
    const [a, b] = [address(), address()];
    for (const email of [a, b, a, b, a]) {
      await timed.append({ action: 'suppression.added', email, actor: { source: 'unsubscribe_link' } });
    }
    await timed.append({
      action: 'suppression.lifted',
      email: a,
      actor: operator,
      reason: 'asked again by phone',
    });
    const until = new Date(clock).toISOString();
    await timed.append({ action: 'nonprofits.imported', actor: operator, details: { created: 3 } });

    const ofA = (await list({ email: a })).items;
    expect(ofA.map(({ action }) => action)).toEqual([
      'suppression.lifted',
      'suppression.added',
      'suppression.added',
      'suppression.added',
    ]);
    expect(ofA.map(({ at }) => at)).toEqual(
      ofA
        .map(({ at }) => at)
        .sort()
        .reverse(),
    );
    expect((await list({ email: a, action: 'suppression.added' })).items).toHaveLength(3);
    expect((await list({ email: b, action: 'suppression.lifted' })).items).toEqual([]);

    // Two at a time over the whole range: 3 pages, every record once, the last page says it is last.
    const pages = await allPages({ since, until, limit: 2 });
    expect(pages.map((page) => page.length)).toEqual([2, 2, 2]);
    expect(new Set(pages.flat()).size).toBe(6);
    // An action with an address, one record a page: the filtered reads go on until a page is full.
    expect((await allPages({ email: a, action: 'suppression.added', limit: 1 })).flat()).toHaveLength(3);
    expect((await list({ action: 'nonprofits.imported', since })).items).toMatchObject([
      { actor: operator, details: { created: 3 } },
    ]);
  });

  it('answers bounds it cannot hold with a 400, and a cursor made by hand outside the range with nothing', async () => {
    // Past year 9999 in UTC, a time would not sort as the records' keys do.
    expect(auditQuery.safeParse({ until: '9999-12-31T23:59:59-23:59' }).success).toBe(false);
    expect(
      auditQuery.safeParse({ since: '2026-12-02T00:00:00Z', until: '2026-12-01T00:00:00Z' }).success,
    ).toBe(false);
    const since = '2030-01-01T00:00:00.000Z';
    const scope = `audit:::${since}:`;
    const below = encodeCursor({ entry: `2029-01-01T00:00:00.000Z#${randomUUID()}` }, scope);
    expect(await list({ since, cursor: below })).toEqual({ items: [], nextCursor: null });
  });

  it('refuses a cursor issued for another query', async () => {
    const email = address();
    for (let n = 0; n < 3; n++)
      await audit.append({ action: 'suppression.added', email, actor: { source: 'ses_feedback' } });
    const { nextCursor } = await list({ email, limit: 1 });
    expect(nextCursor).toEqual(expect.any(String));
    await expect(list({ email: address(), cursor: nextCursor as string })).rejects.toBeInstanceOf(
      ValidationError,
    );
  });
});
