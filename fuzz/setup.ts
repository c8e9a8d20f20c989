import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand, type ScanCommandInput } from '@aws-sdk/lib-dynamodb';
import { dynamoDbClient } from '../local/dynamodb';
import type { Fixtures } from './requests';
import type { Snapshot } from './run';

/**
 * Limits raised so a driver's own pace (the fuzzer's, the soak's) is not throttled into a wall of
 * 429s: they are after the answers of every route, not the usage plan's (the plan has its own tests).
 */
export const UNTHROTTLED_CONTEXT = {
  usagePlanRateLimit: 10_000,
  usagePlanBurstLimit: 10_000,
  usagePlanQuotaPerDay: 10_000_000,
  stageRateLimit: 10_000,
  stageBurstLimit: 10_000,
  sendEmailRequestsPerMinute: 100_000,
  sendEmailBurstLimit: 10_000,
  previewRequestsPerSecond: 10_000,
  previewBurstLimit: 10_000,
  importRequestsPerSecond: 10_000,
  importBurstLimit: 10_000,
  wafRequestsPerIp: 2_000_000_000,
  wafUnsubscribeRequestsPerIp: 2_000_000_000,
  sesMaxSendRate: 2_000,
};

/** JSON with every object's keys sorted, at every depth, so equal items always print alike. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_, nested: unknown) =>
    nested && typeof nested === 'object' && !Array.isArray(nested)
      ? Object.fromEntries(Object.entries(nested).sort(([a], [b]) => a.localeCompare(b)))
      : nested,
  );

/**
 * What a refused request must leave as it was: the registry and the suppression list, item for
 * item, and which jobs exist with their contents. Job items themselves change as consumers work,
 * and deliveries with them, so only their keys are compared; the marks the outcome counter keeps
 * beside jobs, and the reputation window's hourly counts it adds to, come as it counts, so they
 * are left out.
 */
export async function storeSnapshot(
  dynamoDbEndpoint: string,
): Promise<{ snapshot: Snapshot; close(): void }> {
  const raw = dynamoDbClient(dynamoDbEndpoint);
  const client = DynamoDBDocumentClient.from(raw);
  const { TableNames = [] } = await raw.send(new ListTablesCommand({}));
  const table = (prefix: string) => {
    const name = TableNames.find((candidate) => candidate.startsWith(prefix));
    if (!name) throw new Error(`No table ${prefix} in DynamoDB Local`);
    return name;
  };
  /** Every item of a table (or the projected attributes), each as canonical JSON. */
  const scan = async (
    tableName: string,
    projection?: string,
    filter?: Pick<ScanCommandInput, 'FilterExpression' | 'ExpressionAttributeValues'>,
  ) => {
    const items: string[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await client.send(
        new ScanCommand({
          TableName: tableName,
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
          ...(projection ? { ProjectionExpression: projection } : {}),
          ...filter,
        }),
      );
      for (const item of page.Items ?? []) items.push(canonical(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return items;
  };
  const nonprofits = table('DataNonprofits');
  const jobs = table('DataJobs');
  const contents = table('DataJobContents');
  const suppressions = table('DataSuppressions');
  return {
    snapshot: async () => {
      const [registry, suppressed, jobKeys, contentKeys] = await Promise.all([
        scan(nonprofits),
        scan(suppressions),
        scan(jobs, 'job_id', {
          FilterExpression: 'NOT contains(job_id, :mark) AND NOT begins_with(job_id, :window)',
          ExpressionAttributeValues: { ':mark': '#counted#', ':window': 'reputation#' },
        }),
        scan(contents, 'job_id, part'),
      ]);
      return JSON.stringify([registry.sort(), suppressed.sort(), jobKeys.sort(), contentKeys.sort()]);
    },
    close: () => raw.destroy(),
  };
}

const FIXTURE_EMAIL = 'fuzz-fixture@example.org';

const caller = (url: string, apiKey: string) => (method: string, path: string, body: unknown) =>
  fetch(`${url}${path}`, {
    method,
    headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/**
 * Registers the fixture nonprofit, or finds it registered. Run again after the fuzzer deleted it, so
 * later near-valid requests (a job to it, an update) still reach past the lookup.
 */
export async function registerFixture(url: string, apiKey: string): Promise<void> {
  const created = await caller(url, apiKey)('POST', '/nonprofits', {
    email: FIXTURE_EMAIL,
    name: 'Fuzz Fixture',
    address: '1 Fuzz St',
  });
  if (created.status !== 201 && created.status !== 409)
    throw new Error(`Could not register the fixture: ${created.status}`);
}

/** A registered nonprofit and a job of it, so near-valid requests can name real ones. */
export async function createFixtures(url: string, apiKey: string): Promise<Fixtures> {
  await registerFixture(url, apiKey);
  const job = await caller(url, apiKey)('POST', '/send-email', {
    emails: [FIXTURE_EMAIL],
    template: 'Dear {name}',
    subject: 'Hi {name}',
  });
  if (job.status !== 202) throw new Error(`Could not submit the fixture job: ${job.status}`);
  const { job_id: jobId } = (await job.json()) as { job_id: string };
  return { email: FIXTURE_EMAIL, jobId };
}
