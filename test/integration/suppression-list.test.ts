import { randomUUID } from 'node:crypto';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ConflictError, NotFoundError, ValidationError } from '../../lambdas/core/errors';
import { DynamoSuppressionList } from '../../lambdas/core/suppressions/dynamodb/dynamo-suppression-list';
import { dynamoDbClient } from '../../local/dynamodb';
import { tableNamed } from '../support/local-tables';

const client = dynamoDbClient(inject('dynamoDbEndpoint'));
const tableName = tableNamed('DataSuppressions');
const list = new DynamoSuppressionList({ client: DynamoDBDocumentClient.from(client), tableName });

afterAll(() => client.destroy());

const address = () => `${randomUUID().slice(0, 8)}@suppressions.example.org`;

describe('DynamoSuppressionList against DynamoDB Local', () => {
  it('suppresses an address once, keeping the first record when it is suppressed again', async () => {
    const email = address();
    const first = await list.add({
      email,
      reason: 'unsubscribed',
      job_id: randomUUID(),
      api_key_id: 'key-1',
    });
    expect(first.created).toBe(true);

    const again = await list.add({ email, reason: 'manual', api_key_id: 'key-2', note: 'asked by phone' });
    expect(again).toEqual({ suppression: first.suppression, created: false });
    expect(await list.get(email)).toEqual(first.suppression);
  });

  it('lets a complaint replace any other reason, and lifts a complaint only when forced', async () => {
    const email = address();
    await list.add({ email, reason: 'bounced' });
    const complaint = await list.add({ email, reason: 'complained', job_id: randomUUID() });
    expect(complaint).toMatchObject({ created: true, suppression: { reason: 'complained' } });
    // A later unsubscribe does not turn the complaint into something easier to lift.
    expect((await list.add({ email, reason: 'unsubscribed' })).suppression.reason).toBe('complained');

    await expect(list.remove(email, { force: false })).rejects.toBeInstanceOf(ConflictError);
    expect(await list.get(email)).toMatchObject({ reason: 'complained' });
    expect(await list.remove(email, { force: true })).toMatchObject({ email, reason: 'complained' });
    expect(await list.get(email)).toBeUndefined();
  });

  it("keeps the strongest reason: an unsubscribe replaces an operator's add, a manual add never replaces an unsubscribe", async () => {
    const email = address();
    await list.add({ email, reason: 'manual', note: 'asked by phone' });
    const unsubscribed = await list.add({ email, reason: 'unsubscribed', job_id: randomUUID() });
    expect(unsubscribed).toMatchObject({ created: true, suppression: { reason: 'unsubscribed' } });
    expect(await list.add({ email, reason: 'manual' })).toMatchObject({
      created: false,
      suppression: { reason: 'unsubscribed' },
    });
    expect(await list.add({ email, reason: 'bounced' })).toMatchObject({
      created: false,
      suppression: { reason: 'unsubscribed' },
    });
  });

  it('answers 404 for lifting an address that is not suppressed', async () => {
    await expect(list.remove(address(), { force: false })).rejects.toBeInstanceOf(NotFoundError);
    await expect(list.remove(address(), { force: true })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('reads many at once, and only those suppressed', async () => {
    const [a, b, c] = [address(), address(), address()];
    await list.add({ email: a, reason: 'manual' });
    await list.add({ email: c, reason: 'bounced' });
    const found = await list.getMany([a, b, c, a]);
    expect([...found.keys()].sort()).toEqual([a, c].sort());
    expect(await list.getMany([])).toEqual(new Map());
  });

  it('pages by reason with a cursor that only that reason accepts', async () => {
    const emails = Array.from({ length: 5 }, address);
    for (const email of emails) await list.add({ email, reason: 'bounced' });
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await list.list({ reason: 'bounced', limit: 2, cursor });
      expect(page.items.every((item) => item.reason === 'bounced')).toBe(true);
      seen.push(...page.items.map((item) => item.email));
      cursor = page.nextCursor ?? undefined;
      if (cursor) {
        await expect(list.list({ reason: 'manual', limit: 2, cursor })).rejects.toBeInstanceOf(
          ValidationError,
        );
      }
    } while (cursor);
    expect(seen).toEqual(expect.arrayContaining(emails));
    expect(new Set(seen).size).toBe(seen.length);
  });
});
