import { randomUUID } from 'node:crypto';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ConflictError, NotFoundError, ValidationError } from '../../lambdas/core/errors';
import { DynamoNonprofitRepository } from '../../lambdas/core/nonprofits/dynamodb/dynamo-nonprofit-repository';

import { dynamoDbClient } from '../../local/dynamodb';
import { tableNamed } from '../support/local-tables';

const client = dynamoDbClient(inject('dynamoDbEndpoint'));
const tableName = tableNamed('DataNonprofits');
const repository = new DynamoNonprofitRepository({
  client: DynamoDBDocumentClient.from(client),
  tableName,
});

afterAll(() => client.destroy());

/** Each test gets a domain of its own, so tests never see each other's data. */
const uniqueDomain = () => `${randomUUID().slice(0, 8)}.example.org`;

describe('DynamoNonprofitRepository against DynamoDB Local', () => {
  it('creates, reads, updates and deletes a nonprofit', async () => {
    const email = `info@${uniqueDomain()}`;
    const created = await repository.create({ email, name: 'Example', address: '1 Main St' });

    expect(await repository.get(email)).toEqual(created);
    const updated = await repository.update(email, { name: 'Renamed', address: '2 Main St' });
    expect(updated).toMatchObject({
      email,
      name: 'Renamed',
      address: '2 Main St',
      created_at: created.created_at,
    });
    await repository.delete(email);
    expect(await repository.get(email)).toBeUndefined();
  });

  it("updates for an import only a changed nonprofit's name or address, and never creates one", async () => {
    const email = `import@${uniqueDomain()}`;
    const created = await repository.create({ email, name: 'Imported', address: '1 Main St' });
    expect(await repository.updateIfChanged({ email, name: 'Imported', address: '1 Main St' })).toBe(false);
    expect(await repository.get(email)).toEqual(created);
    expect(await repository.updateIfChanged({ email, name: 'Imported', address: '2 Main St' })).toBe(true);
    expect(await repository.get(email)).toMatchObject({
      address: '2 Main St',
      created_at: created.created_at,
    });
    const absent = `absent@${uniqueDomain()}`;
    expect(await repository.updateIfChanged({ email: absent, name: 'X', address: 'Y' })).toBe(false);
    expect(await repository.get(absent)).toBeUndefined();
  });

  it('refuses a second nonprofit with the same email, keeping the first', async () => {
    const email = `info@${uniqueDomain()}`;
    await repository.create({ email, name: 'First', address: 'A' });

    await expect(repository.create({ email, name: 'Second', address: 'B' })).rejects.toBeInstanceOf(
      ConflictError,
    );
    expect((await repository.get(email))?.name).toBe('First');
  });

  it('answers not found for updating or deleting an absent nonprofit, creating nothing', async () => {
    const email = `ghost@${uniqueDomain()}`;
    await expect(repository.update(email, { name: 'A', address: 'B' })).rejects.toBeInstanceOf(NotFoundError);
    await expect(repository.delete(email)).rejects.toBeInstanceOf(NotFoundError);
    expect(await repository.get(email)).toBeUndefined();
  });

  it('pages through one domain with the index, each nonprofit once, in email order', async () => {
    const domain = uniqueDomain();
    const emails = Array.from({ length: 7 }, (_, n) => `n${n}@${domain}`);
    await Promise.all(emails.map((email) => repository.create({ email, name: email, address: 'A' })));
    await repository.create({ email: `n0@${uniqueDomain()}`, name: 'Elsewhere', address: 'A' });

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await repository.list({ domain, limit: 3, cursor });
      seen.push(...page.items.map((item) => item.email));
      cursor = page.nextCursor ?? undefined;
      pages++;
    } while (cursor);

    expect(seen).toEqual(emails);
    expect(pages).toBe(3);
  });

  it('ends an exactly full last page without a cursor to an empty one', async () => {
    const domain = uniqueDomain();
    await Promise.all(
      [1, 2].map((n) => repository.create({ email: `n${n}@${domain}`, name: 'A', address: 'B' })),
    );

    const page = await repository.list({ domain, limit: 2 });
    expect(page.items).toHaveLength(2);
    expect(page.nextCursor).toBeNull();
  });

  it('pages through the whole registry with a scan', async () => {
    const domain = uniqueDomain();
    await Promise.all(
      [1, 2, 3].map((n) => repository.create({ email: `n${n}@${domain}`, name: 'A', address: 'B' })),
    );

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await repository.list({ limit: 2, cursor });
      seen.push(...page.items.map((item) => item.email));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);

    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining([1, 2, 3].map((n) => `n${n}@${domain}`)));
  });

  it('rejects a cursor of another domain before it reaches DynamoDB', async () => {
    const domain = uniqueDomain();
    await Promise.all(
      [1, 2].map((n) => repository.create({ email: `n${n}@${domain}`, name: 'A', address: 'B' })),
    );
    const { nextCursor } = await repository.list({ domain, limit: 1 });

    await expect(
      repository.list({ domain: uniqueDomain(), limit: 1, cursor: nextCursor ?? '' }),
    ).rejects.toBeInstanceOf(ValidationError);
  });
});
