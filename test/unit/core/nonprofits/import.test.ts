import { beforeEach, describe, expect, it } from 'vitest';
import { makeImportNonprofits } from '../../../../lambdas/api/import-nonprofits';
import type { AuditEntry } from '../../../../lambdas/core/audit/audit';
import { ConflictError } from '../../../../lambdas/core/errors';
import {
  importNonprofits,
  MAX_IMPORT_ROWS,
  type NonprofitImportStore,
  readImportRows,
} from '../../../../lambdas/core/nonprofits/import';
import type { NewNonprofit } from '../../../../lambdas/core/nonprofits/nonprofit';
import { apiEvent, jsonBody, lambdaContext } from '../../../support/api-events';

/** The registry in memory, with the repository's conditions: create refuses a registered address; update writes only a change. */
function memoryStore(initial: NewNonprofit[] = []) {
  const stored = new Map(initial.map((entry) => [entry.email, { ...entry }]));
  let writes = 0;
  const store: NonprofitImportStore = {
    async create(input) {
      if (stored.has(input.email))
        throw new ConflictError(`Nonprofit with email ${input.email} already exists.`);
      stored.set(input.email, { ...input });
      writes++;
      return { ...input, domain: '', created_at: '', updated_at: '' };
    },
    async updateIfChanged(input) {
      const found = stored.get(input.email);
      if (!found || (found.name === input.name && found.address === input.address)) return false;
      stored.set(input.email, { ...input });
      writes++;
      return true;
    },
  };
  return { store, stored, writes: () => writes };
}

describe('readImportRows', () => {
  it('reads RFC 4180 CSV: a BOM, quoted commas, doubled quotes, line breaks in a field, CRLF, the columns in any order', () => {
    const csv =
      '\uFEFFname,email,address\r\n' +
      '"Aid, Inc.",aid@example.org,"1 Main St\nSuite 2"\r\n' +
      '"The ""Best"" Help",best@example.org,2 Side St\r\n';
    expect(readImportRows(csv, 'text/csv; charset=utf-8')).toEqual([
      { name: 'Aid, Inc.', email: 'aid@example.org', address: '1 Main St\nSuite 2' },
      { name: 'The "Best" Help', email: 'best@example.org', address: '2 Side St' },
    ]);
  });

  it('reads a JSON array', () => {
    expect(
      readImportRows('[{"email":"a@example.org","name":"A","address":"1"}]', 'application/json'),
    ).toEqual([{ email: 'a@example.org', name: 'A', address: '1' }]);
  });

  it.each([
    [
      'an unterminated quote',
      'email,name,address\na@example.org,"A,1 Main St\n',
      'text/csv',
      'not valid CSV',
    ],
    [
      'a row with a column too many',
      'email,name,address\na@example.org,A,1,extra\n',
      'text/csv',
      'not valid CSV',
    ],
    ['another header', 'mail,title,street\na@example.org,A,1\n', 'text/csv', 'email, name and address'],
    ['a header alone', 'email,name,address\n', 'text/csv', 'no rows'],
    ['JSON that is not an array', '{"email":"a@example.org"}', 'application/json', 'JSON array'],
    ['broken JSON', '[{"email":', 'application/json', 'not valid JSON'],
    [
      `${MAX_IMPORT_ROWS + 1} rows`,
      JSON.stringify(Array.from({ length: MAX_IMPORT_ROWS + 1 }, (_, n) => ({ email: `r${n}@example.org` }))),
      'application/json',
      'at most 1000 rows',
    ],
  ])('refuses %s as a whole', (_, body, type, problem) => {
    expect(() => readImportRows(body, type)).toThrow(problem);
  });
});

describe('bounded answers and readable text', () => {
  it('lists at most 5 problems per invalid row, however many it has, with their count', async () => {
    const { store } = memoryStore();
    const hostile = Object.fromEntries(Array.from({ length: 10_000 }, (_, n) => [`k${n}`, n]));
    const result = await importNonprofits(
      store,
      [{ email: 'a@example.org', name: 'A', address: '1' }, hostile],
      'skip',
    );
    const [, invalid] = result.rows;
    expect(invalid).toMatchObject({ status: 'invalid', details_total: 10_003 });
    expect(invalid?.status === 'invalid' && invalid.details).toHaveLength(5);
    expect(Buffer.byteLength(JSON.stringify(result))).toBeLessThan(2_000);
  });

  it('refuses a body that is not UTF-8 (a Latin-1 file), rather than storing garbled names', () => {
    const latin1 = Buffer.from('email,name,address\na@example.org,Caf\xe9,1 Main St\n', 'latin1');
    expect(() => readImportRows(latin1.toString('utf8'), 'text/csv')).toThrow('not UTF-8');
  });
});

describe('importNonprofits', () => {
  const rows = [
    { email: 'New@Example.org', name: 'New Aid', address: '1 Main St' },
    { email: 'old@example.org', name: 'Old Aid Renamed', address: '2 Main St' },
    { email: 'bad', name: '', address: '3 Main St' },
    { email: 'new@example.org', name: 'Again', address: '4 Main St' },
    'not an object',
    { email: 'extra@example.org', name: 'X', address: 'Y', phone: '555' },
  ];
  const existing = [{ email: 'old@example.org', name: 'Old Aid', address: '2 Main St' }];

  it('creates the new, leaves the registered, and names every invalid row with its problems', async () => {
    const { store, stored } = memoryStore(existing);
    const result = await importNonprofits(store, rows, 'skip');
    expect(result).toMatchObject({ created: 1, updated: 0, exists: 1, invalid: 4 });
    expect(result.rows).toEqual([
      { row: 1, email: 'new@example.org', status: 'created' },
      { row: 2, email: 'old@example.org', status: 'exists' },
      {
        row: 3,
        email: 'bad',
        status: 'invalid',
        details: [
          { field: 'name', message: expect.any(String) },
          { field: 'email', message: 'Must be a valid email address' },
        ],
        details_total: 2,
      },
      {
        row: 4,
        email: 'new@example.org',
        status: 'invalid',
        details: [{ field: 'email', message: 'Duplicate of row 1 (new@example.org)' }],
        details_total: 1,
      },
      {
        row: 5,
        email: null,
        status: 'invalid',
        details: [{ field: '(row)', message: expect.any(String) }],
        details_total: 1,
      },
      {
        row: 6,
        email: 'extra@example.org',
        status: 'invalid',
        details: [{ field: 'phone', message: 'Unrecognized field' }],
        details_total: 1,
      },
    ]);
    expect(stored.get('old@example.org')?.name).toBe('Old Aid');
  });

  it('updates a changed registered nonprofit with update, and writes nothing when the import is repeated', async () => {
    const { store, stored, writes } = memoryStore(existing);
    const first = await importNonprofits(store, rows, 'update');
    expect(first).toMatchObject({ created: 1, updated: 1, exists: 0 });
    expect(stored.get('old@example.org')?.name).toBe('Old Aid Renamed');
    const before = writes();
    const again = await importNonprofits(store, rows, 'update');
    expect(again).toMatchObject({ created: 0, updated: 0, exists: 2, invalid: 4 });
    expect(writes()).toBe(before);
  });
});

describe('POST /nonprofits/import', () => {
  let recorded: AuditEntry[] = [];
  beforeEach(() => {
    recorded = [];
  });
  const audit = { append: async (entry: AuditEntry) => void recorded.push(entry) };
  const post = (body: string, contentType: string, query: Record<string, string> | null = null) =>
    makeImportNonprofits({
      nonprofits: memoryStore().store,
      audit,
      erased: { rememberErased: async () => [] },
    })(
      apiEvent({
        httpMethod: 'POST',
        body,
        headers: { 'Content-Type': contentType },
        queryStringParameters: query,
      }),
      lambdaContext,
    );

  it('answers 200 with every row for a CSV import', async () => {
    const result = await post('email,name,address\na@example.org,A,1 Main St\nbad,B,2\n', 'text/csv');
    expect(result.statusCode).toBe(200);
    expect(jsonBody(result)).toMatchObject({ created: 1, invalid: 1 });
    // One audit record for the import, with its counts and the key that made it, not one per row.
    expect(recorded).toEqual([
      {
        action: 'nonprofits.imported',
        actor: { source: 'api', api_key_id: expect.any(String) },
        details: { created: 1, updated: 0, exists: 0, invalid: 1, on_conflict: 'skip' },
      },
    ]);
  });

  it('answers 400 when no row is valid, naming each row, and for a bad on_conflict or no body', async () => {
    const none = await post('[{"email":"bad"},{"email":"worse"}]', 'application/json');
    expect(none.statusCode).toBe(400);
    // Nothing changed, nothing recorded.
    expect(recorded).toEqual([]);
    expect(jsonBody(none)).toMatchObject({
      message: 'No row of the import is valid',
      details: expect.arrayContaining([{ field: 'rows[2].email', message: 'Must be a valid email address' }]),
    });
    const valid = '[{"email":"a@example.org","name":"A","address":"1 Main St"}]';
    expect((await post(valid, 'application/json')).statusCode).toBe(200);
    const badQuery = await post(valid, 'application/json', { on_conflict: 'replace' });
    expect([badQuery.statusCode, jsonBody(badQuery).details]).toEqual([
      400,
      [{ field: 'query.on_conflict', message: 'Must be skip or update' }],
    ]);
    expect((await post('', 'text/csv')).statusCode).toBe(400);
  });
});
