import { afterAll, describe, expect, it } from 'vitest';
import { DynamoRenderedEmails } from '../../lambdas/core/jobs/dynamodb/dynamo-rendered-emails';
import { MAX_SNAPSHOT_NONPROFITS, type SnapshotValues } from '../../lambdas/core/jobs/rendered-emails';
import { localDocumentClient, tableNamed } from '../support/local-tables';

const { client, destroy } = localDocumentClient();
afterAll(destroy);

describe('render snapshots, on DynamoDB Local', () => {
  it('keeps the most nonprofits a snapshot holds, each at its longest, under the item limit, and reads them back', async () => {
    const store = new DynamoRenderedEmails({
      client,
      tableName: tableNamed('DataRenderedEmails'),
      retentionDays: 1,
    });
    // The longest of each field: a 254-character address; a name and a postal address of 3-byte characters.
    const nonprofits: Record<string, SnapshotValues> = Object.fromEntries(
      Array.from({ length: MAX_SNAPSHOT_NONPROFITS }, (_, n) => [
        `${String(n).padStart(3, '0')}${'a'.repeat(60)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(58)}.org`,
        { name: '€'.repeat(200), address: '€'.repeat(500) },
      ]),
    );
    expect(Object.keys(nonprofits)[0]).toHaveLength(254);
    const jobId = crypto.randomUUID();

    await store.putSnapshot(jobId, { id: 'snap-1', nonprofits });

    const read = await store.getSnapshots(jobId, ['snap-1', 'snap-missing']);
    expect([...read.keys()]).toEqual(['snap-1']);
    expect(read.get('snap-1')?.nonprofits).toEqual(nonprofits);
    // Kept apart from the emails stored whole: a snapshot is never read as one.
    expect(await store.getMany(jobId, Object.keys(nonprofits).slice(0, 3))).toEqual(new Map());
  });
});
