import { randomUUID } from 'node:crypto';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { DynamoAuditReader, DynamoAuditTrail } from '../../lambdas/core/audit/dynamodb/dynamo-audit-trail';
import { ConflictError, NotFoundError, ValidationError } from '../../lambdas/core/errors';
import { DynamoSuppressionList } from '../../lambdas/core/suppressions/dynamodb/dynamo-suppression-list';
import { dynamoDbClient } from '../../local/dynamodb';
import { tableNamed } from '../support/local-tables';

const client = dynamoDbClient(inject('dynamoDbEndpoint'));
const tableName = tableNamed('DataSuppressions');
const documents = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
const auditTable = tableNamed('DataAudit');
const audit = new DynamoAuditTrail({ client: documents, tableName: auditTable, retentionDays: 400 });
const auditReader = new DynamoAuditReader({ client: documents, tableName: auditTable });
const list = new DynamoSuppressionList({ client: documents, tableName, audit });
const recordsOf = async (email: string) => (await auditReader.list({ email, limit: 100 })).items;

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

  it('lets a complaint replace any other reason, and lifts it only with force and a reason of consent', async () => {
    const email = address();
    await list.add({ email, reason: 'bounced' });
    const complaint = await list.add({ email, reason: 'complained', job_id: randomUUID() });
    expect(complaint).toMatchObject({ created: true, suppression: { reason: 'complained' } });
    // A later unsubscribe does not turn the complaint into something easier to lift.
    expect((await list.add({ email, reason: 'unsubscribed' })).suppression.reason).toBe('complained');

    const refusals = [
      { force: false, reason: 'She asked us by phone to send again' },
      { force: true },
      { force: true, reason: 'too short' },
    ];
    for (const lift of refusals) await expect(list.remove(email, lift)).rejects.toBeInstanceOf(ConflictError);
    expect(await list.get(email)).toMatchObject({ reason: 'complained' });
    const lifted = await list.remove(email, {
      force: true,
      reason: 'She asked us by phone to send again',
      api_key_id: 'key-ops',
    });
    expect(lifted).toMatchObject({ email, reason: 'complained' });
    expect(await list.get(email)).toBeUndefined();

    // The trail holds each change, newest first: the lift (with who, why and what it lifted), the
    // complaint over the bounce, the bounce. The refused lifts and the unsubscribe that changed nothing, nothing.
    const [lift, complained, bounced, ...more] = await recordsOf(email);
    expect(more).toEqual([]);
    expect(lift).toMatchObject({
      action: 'suppression.lifted',
      email,
      actor: { source: 'api', api_key_id: 'key-ops' },
      reason: 'She asked us by phone to send again',
      details: { force: true, previous: { reason: 'complained', job_id: complaint.suppression.job_id } },
    });
    expect(complained).toMatchObject({
      action: 'suppression.added',
      actor: { source: 'ses_feedback' },
      details: { reason: 'complained', previous: { reason: 'bounced' } },
    });
    expect(bounced).toMatchObject({ action: 'suppression.added', details: { reason: 'bounced' } });
    expect(bounced?.details).not.toHaveProperty('previous');
  });

  it('names what a lift lacks: an unsubscribe needs force and consent, a bounce or a manual add a reason', async () => {
    const [unsubscribed, bounced] = [address(), address()];
    await list.add({ email: unsubscribed, reason: 'unsubscribed', job_id: randomUUID() });
    await list.add({ email: bounced, reason: 'bounced' });
    const refusal = (email: string, lift: { force: boolean; reason?: string }) =>
      list.remove(email, lift).then(
        () => undefined,
        (error: ConflictError) => error.details.map(({ field }) => field),
      );
    expect(await refusal(unsubscribed, { force: false })).toEqual(['query.force', 'query.reason']);
    expect(await refusal(unsubscribed, { force: false, reason: 'asked again on the phone' })).toEqual([
      'query.force',
    ]);
    expect(await refusal(unsubscribed, { force: true, reason: 'asked' })).toEqual(['query.reason']);
    expect(await refusal(bounced, { force: false })).toEqual(['query.reason']);
    // A bounce's lift needs no force: the address's owner never asked for it.
    expect(await refusal(bounced, { force: false, reason: 'mailbox fixed' })).toBeUndefined();
    expect(await list.get(unsubscribed)).toMatchObject({ reason: 'unsubscribed' });
    expect(await list.get(bounced)).toBeUndefined();
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
    await expect(
      list.remove(address(), { force: true, reason: 'asked again by email' }),
    ).rejects.toBeInstanceOf(NotFoundError);
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
