import { randomUUID } from 'node:crypto';
import { GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { DynamoAuditReader, DynamoAuditTrail } from '../../lambdas/core/audit/dynamodb/dynamo-audit-trail';
import { ConflictError } from '../../lambdas/core/errors';
import { EventOutbox } from '../../lambdas/core/events/dynamodb/outbox';
import { recipientUnsubscribed } from '../../lambdas/core/events/events';
import { deliveryPartition } from '../../lambdas/core/jobs/deliveries';
import { DynamoJobContents } from '../../lambdas/core/jobs/dynamodb/dynamo-job-contents';
import { DynamoJobStore } from '../../lambdas/core/jobs/dynamodb/dynamo-job-store';
import { DynamoLedgerSearch } from '../../lambdas/core/jobs/dynamodb/dynamo-ledger-search';
import { SCHEDULED_MARKER } from '../../lambdas/core/jobs/job-status';
import { STREAM_COUNTED } from '../../lambdas/core/jobs/outcome-counts';
import { DynamoNonprofitRepository } from '../../lambdas/core/nonprofits/dynamodb/dynamo-nonprofit-repository';
import { erasedKeyWith } from '../../lambdas/core/people/address-keys';
import { DynamoEraser } from '../../lambdas/core/people/dynamodb/dynamo-eraser';
import { DynamoPersonRequests } from '../../lambdas/core/people/dynamodb/dynamo-person-requests';
import {
  ERASURE_START_DELAY_SECONDS,
  type PersonRequestMessage,
} from '../../lambdas/core/people/person-requests';
import {
  acceptPersonRequest,
  type PersonRequestWorkerDependencies,
  RequestUnderWayError,
  runPersonRequestStep,
} from '../../lambdas/core/people/run-person-request';
import { DynamoSuppressionList } from '../../lambdas/core/suppressions/dynamodb/dynamo-suppression-list';
import { localDocumentClient, tableNamed, tablesOfThisFile } from '../support/local-tables';

const { client, destroy } = localDocumentClient();
afterAll(() => destroy());

const SECRET = 'k'.repeat(64);
const keys = { erasedKeyOf: async (email: string) => erasedKeyWith(SECRET, email) };
const tables = {
  requests: tableNamed('DataPersonRequests'),
  deliveries: tableNamed('DataDeliveries'),
  contents: tableNamed('DataJobContents'),
  nonprofits: tableNamed('DataNonprofits'),
  suppressions: tableNamed('DataSuppressions'),
  audit: tableNamed('DataAudit'),
  outbox: tableNamed('DataOutbox'),
  rendered: tableNamed('DataRenderedEmails'),
  jobs: tableNamed('DataJobs'),
};
const audit = new DynamoAuditTrail({ client, tableName: tables.audit, retentionDays: 400 });
const requests = new DynamoPersonRequests({
  client,
  tableName: tables.requests,
  erasure: { suppressionsTable: tables.suppressions, nonprofitsTable: tables.nonprofits, audit },
});
const contents = new DynamoJobContents({ client, tableName: tables.contents });
const nonprofits = new DynamoNonprofitRepository({ client, tableName: tables.nonprofits, audit });
const suppressions = new DynamoSuppressionList({ client, tableName: tables.suppressions, audit, keys });
const jobs = new DynamoJobStore({ client, tableName: tables.jobs });
const operator = { source: 'api', api_key_id: 'key-ops' } as const;
/** The stack's default look again at running jobs: a message sent this late is left queued by `drain`. */
const ERASURE_RECHECK_SECONDS = 60;

/** The queue as the worker sees it: each message with the delay it was sent with. */
function memoryQueue() {
  const sent: { message: PersonRequestMessage; delaySeconds: number }[] = [];
  return {
    sent,
    send: async (messages: readonly PersonRequestMessage[], delaySeconds = 0) => {
      sent.push(...messages.map((message) => ({ message, delaySeconds })));
    },
  };
}

function worker(queue: ReturnType<typeof memoryQueue>): PersonRequestWorkerDependencies {
  return {
    requests,
    queue,
    ledger: new DynamoLedgerSearch({ client, deliveriesTable: tables.deliveries, contents, pageSize: 2 }),
    nonprofits,
    suppressions,
    erasure: {
      eraser: new DynamoEraser({
        client,
        tables: {
          deliveries: tables.deliveries,
          job_contents: tables.contents,
          rendered_emails: tables.rendered,
          audit: tables.audit,
          outbox: tables.outbox,
          person_requests: tables.requests,
          suppressions: tables.suppressions,
        },
        contents,
        pageSize: 3,
      }),
      jobs,
      recheckSeconds: ERASURE_RECHECK_SECONDS,
    },
    log: () => {},
    segments: 2,
  };
}

/**
 * Runs every queued step, each an invocation with time for two pages, until none is left but a
 * look again at running jobs (sent for later): that one stays queued.
 */
async function drain(queue: ReturnType<typeof memoryQueue>, deps: PersonRequestWorkerDependencies) {
  for (;;) {
    const index = queue.sent.findIndex(({ delaySeconds }) => delaySeconds < ERASURE_RECHECK_SECONDS);
    const next = queue.sent.splice(index, index < 0 ? 0 : 1)[0];
    if (!next) return;
    let pages = 0;
    await runPersonRequestStep(deps, next.message, () => ++pages < 2);
  }
}

/** Every item of every table of this file, as an independent client would read them. */
async function everything(): Promise<string> {
  const all = await Promise.all(
    Object.values(tablesOfThisFile()).map(async (TableName) => {
      const items: unknown[] = [];
      let ExclusiveStartKey: Record<string, unknown> | undefined;
      do {
        const page = await client.send(new ScanCommand({ TableName, ExclusiveStartKey }));
        items.push(...(page.Items ?? []));
        ExclusiveStartKey = page.LastEvaluatedKey;
      } while (ExclusiveStartKey);
      return items;
    }),
  );
  return JSON.stringify(all, (_name, value) => (value instanceof Set ? [...value] : value));
}

async function job(id: string, content: { cc?: string[]; recipients: string[]; delivery_shards?: number }) {
  await contents.put({
    job_id: id,
    recipients: content.recipients,
    request_hash: 'hash',
    template: 'Dear {name} at {address}',
    html: null,
    subject: 'Spring appeal',
    cc: content.cc ?? [],
    accepted_at: new Date().toISOString(),
    ...(content.delivery_shards ? { delivery_shards: content.delivery_shards } : {}),
  });
}

const put = (TableName: string, Item: Record<string, unknown>) =>
  client.send(new PutCommand({ TableName, Item }));

describe('an erasure against DynamoDB Local', () => {
  it('suppresses at once, waits out running jobs, then leaves no address, name or postal address in any table, with counts kept', async () => {
    const tag = randomUUID().slice(0, 8);
    const person = `ann-${tag}@people.example.org`;
    // Another person whose address ends with the first's: nothing of theirs may change.
    const neighbour = `joann-${tag}@people.example.org`.replace(`joann-${tag}`, `jo.ann-${tag}`);
    const name = `Ann Person ${tag}`;
    const postal = `42 Private Lane ${tag}`;
    const key = erasedKeyWith(SECRET, person);
    await nonprofits.create({ email: person, name, address: postal }, operator);
    await nonprofits.create({ email: neighbour, name: 'Jo Ann', address: '1 Other Rd' }, operator);
    await suppressions.add({ email: person, reason: 'unsubscribed', job_id: 'j' });
    // Another's record whose note names the person, and so does its audit record's reason.
    await suppressions.add({
      email: neighbour,
      reason: 'manual',
      note: `forwards to ${person}.`,
      api_key_id: 'k',
    });

    // A job to the person, its deliveries spread over 4 partition keys; another where they had a copy.
    const sent = randomUUID();
    const copied = randomUUID();
    await job(sent, { recipients: [neighbour, person].sort(), delivery_shards: 4 });
    await job(copied, { recipients: [neighbour], cc: [person] });
    const at = '2026-12-01T10:00:00.000Z';
    await put(tables.deliveries, {
      job_id: deliveryPartition(sent, person, 4),
      recipient: person,
      status: 'sent',
      message_id: 'ses-1',
      handed_over_at: at,
      [STREAM_COUNTED]: true,
      feedback: [{ type: 'unsubscribe', at, detail: `unsubscribed: ${person}` }],
    });
    await put(tables.deliveries, {
      job_id: deliveryPartition(sent, neighbour, 4),
      recipient: neighbour,
      status: 'sent',
      message_id: 'ses-2',
      [STREAM_COUNTED]: true,
    });
    await put(tables.deliveries, {
      job_id: copied,
      recipient: neighbour,
      status: 'sent',
      message_id: 'ses-3',
      copy_ids: { [person]: 'ses-copy' },
      [STREAM_COUNTED]: true,
      feedback: [{ type: 'bounce', at, detail: `${person}: mailbox full; ${neighbour}: fine` }],
    });
    await put(tables.rendered, {
      job_id: sent,
      recipient: 'snapshot#s1',
      nonprofits: {
        [person]: { name, address: postal },
        [neighbour]: { name: 'Jo Ann', address: '1 Other Rd' },
      },
      expires_at: 9_999_999_999,
    });
    await put(tables.rendered, {
      job_id: sent,
      recipient: person,
      subject: 'Spring appeal',
      body: `Dear ${name} at ${postal}`,
      expires_at: 9_999_999_999,
    });
    await client.send(
      new PutCommand(
        new EventOutbox(tables.outbox).put(recipientUnsubscribed({ email: person, suppressed_at: at })).Put,
      ),
    );
    // An earlier export of the person, and what it found.
    const exportQueue = memoryQueue();
    const { request_id: exported } = await acceptPersonRequest(
      { requests, queue: exportQueue, keys },
      { kind: 'export', email: person, api_key_id: 'key-ops' },
    );
    await drain(exportQueue, worker(exportQueue));
    expect(await requests.get(exported)).toMatchObject({ status: 'completed' });
    // An export that died after it, its hold left on the address.
    await put(tables.requests, {
      request_id: `hold#export#${person}`,
      part: '#request',
      held_by: randomUUID(),
    });
    // A job still running: the erasure walks only once it has ended.
    const running = randomUUID();
    await put(tables.jobs, { job_id: running, status: 'processing', active: 'yes', created_at: at });

    const queue = memoryQueue();
    const { request_id } = await acceptPersonRequest(
      { requests, queue, keys },
      { kind: 'erasure', email: person, api_key_id: 'key-ops' },
    );
    // At once: suppressed under the address and its key, the entry gone.
    expect(await suppressions.get(person)).toMatchObject({ reason: 'erased' });
    expect(await suppressions.get(key)).toMatchObject({ email: key, reason: 'erased' });
    expect(await nonprofits.get(person)).toBeUndefined();
    expect(queue.sent).toEqual([
      { message: { step: 'start', request_id }, delaySeconds: ERASURE_START_DELAY_SECONDS },
    ]);
    // A second erasure while it runs answers the first.
    const second = acceptPersonRequest(
      { requests, queue: memoryQueue(), keys },
      { kind: 'erasure', email: person, api_key_id: 'key-other' },
    );
    await expect(second).rejects.toBeInstanceOf(RequestUnderWayError);
    await expect(second).rejects.toMatchObject({ fields: { request_id } });
    // So does an export: it would keep what the erasure takes away.
    await expect(
      acceptPersonRequest(
        { requests, queue: memoryQueue(), keys },
        { kind: 'export', email: person, api_key_id: 'key-other' },
      ),
    ).rejects.toMatchObject({ fields: { request_id, kind: 'erasure' } });

    const deps = worker(queue);
    await drain(queue, deps);
    // It waits for the running job, looking again later; nothing is erased meanwhile.
    expect(await requests.get(request_id)).toMatchObject({ status: 'running', waiting_for: [running] });
    expect(queue.sent).toEqual([
      { message: { step: 'wait', request_id }, delaySeconds: ERASURE_RECHECK_SECONDS },
    ]);
    expect(await everything()).toContain(postal);
    await put(tables.jobs, { job_id: running, status: 'completed', created_at: at });
    const look = queue.sent.splice(0, 1)[0]?.message as PersonRequestMessage;
    await runPersonRequestStep(deps, look, () => true);
    await drain(queue, deps);
    expect(queue.sent).toEqual([]);

    const done = await requests.get(request_id);
    expect(done).toMatchObject({ status: 'completed', address_key: key });
    expect(done).not.toHaveProperty('email');
    expect(done?.erased).toMatchObject({ deliveries: 2, job_contents: 2, rendered_emails: 2, outbox: 1 });
    expect(done?.erased?.audit).toBeGreaterThanOrEqual(2);

    // An independent read of every table: neither the address nor the name nor the postal address.
    const stored = await everything();
    // The neighbour's address ends with the person's: only a whole address counts as theirs.
    expect(stored.replaceAll(neighbour, '')).not.toContain(person);
    expect(stored).not.toContain(name);
    expect(stored).not.toContain(postal);
    // The neighbour's data is untouched, whole.
    expect(stored).toContain(neighbour);
    expect(stored).toContain('1 Other Rd');
    // The person stays suppressed under the key alone; the export is gone with what it found.
    expect(await suppressions.get(key)).toMatchObject({ reason: 'erased' });
    expect(await suppressions.get(person)).toBeUndefined();
    expect(await requests.get(exported)).toBeUndefined();
    // A link from an email sent before, or a late SES report, finds it suppressed and stores nothing.
    expect(await suppressions.add({ email: person, reason: 'unsubscribed', job_id: sent })).toMatchObject({
      created: false,
      suppression: { email: person, reason: 'erased' },
    });
    expect(await suppressions.get(person)).toBeUndefined();
    expect(await suppressions.lookUp(person)).toMatchObject({ email: person, reason: 'erased' });
    // Counts stay exact: the delivery moved to the key, under the shard the key names, and is not
    // counted again by the stream (no `stream_counted` on the copy).
    const moved = JSON.parse(stored)
      .flat()
      .find((item: { recipient?: string }) => item.recipient === key);
    expect(moved).toMatchObject({
      job_id: deliveryPartition(sent, key, 4),
      status: 'sent',
      message_id: 'ses-1',
    });
    expect(moved).not.toHaveProperty(STREAM_COUNTED);
    expect(await contents.allRecipients(sent)).toHaveLength(2);
    expect((await contents.content(copied))?.cc).toEqual([key]);
    // The trail keeps what was done, under the key; and records the erasure.
    const trail = await new DynamoAuditReader({ client, tableName: tables.audit }).list({
      email: key,
      limit: 50,
    });
    expect(trail.items.map(({ action }) => action)).toEqual(
      expect.arrayContaining([
        'person.erased',
        'person.erasure_requested',
        'nonprofit.created',
        'suppression.added',
      ]),
    );

    // The address comes back in (a re-created entry, an import, a cc): it is suppressed again.
    expect(await suppressions.rememberErased([person, neighbour])).toEqual([person]);
    expect(await suppressions.get(person)).toMatchObject({ reason: 'erased' });
    // The neighbour's own suppression is theirs; its note named the person, and now names the key.
    expect(await suppressions.get(neighbour)).toMatchObject({
      reason: 'manual',
      note: `forwards to ${key}.`,
    });
    // Lifted only with the person's consent, and then the key's record goes too.
    await expect(suppressions.remove(person, { force: false, api_key_id: 'k' })).rejects.toBeInstanceOf(
      ConflictError,
    );
    await suppressions.remove(person, { force: true, reason: 'asked to be mailed again', api_key_id: 'k' });
    expect(await suppressions.get(key)).toBeUndefined();
  });

  it('waits out, and walks again past, a scheduled job that ran during its walk, running or ended', async () => {
    const person = `late-${randomUUID().slice(0, 8)}@people.example.org`;
    const key = erasedKeyWith(SECRET, person);
    const acceptedBefore = '2026-12-01T09:00:00.000Z';
    // Two jobs scheduled before the erasure, to the person: one runs and ends during the first walk,
    // the other is still running when it ends. A third stays scheduled: its list is rewritten.
    const [ended, running, later] = [randomUUID(), randomUUID(), randomUUID()];
    for (const jobId of [ended, running, later]) {
      await job(jobId, { recipients: [person] });
      await put(tables.jobs, {
        job_id: jobId,
        status: 'scheduled',
        scheduled: SCHEDULED_MARKER,
        send_at: '2026-12-24T09:00:00.000Z',
        created_at: acceptedBefore,
      });
    }
    const queue = memoryQueue();
    const { request_id } = await acceptPersonRequest(
      { requests, queue, keys },
      { kind: 'erasure', email: person, api_key_id: 'key-ops' },
    );
    const base = worker(queue);
    const erasure = base.erasure as NonNullable<PersonRequestWorkerDependencies['erasure']>;
    let ranBehind: Promise<void> | undefined;
    const deps: PersonRequestWorkerDependencies = {
      ...base,
      erasure: {
        ...erasure,
        jobs: {
          activeJobs: (until) => jobs.activeJobs(until),
          scheduledBefore: (until) => jobs.scheduledBefore(until),
          get: async (jobId) => {
            // By the first walk's end, the two jobs have started (their recipient lists read before
            // the walk rewrote them) and written the person's delivery behind it; one has ended.
            ranBehind ??= (async () => {
              for (const started of [ended, running]) {
                await put(tables.deliveries, { job_id: started, recipient: person, status: 'suppressed' });
                await put(tables.jobs, {
                  job_id: started,
                  status: started === ended ? 'completed' : 'processing',
                  ...(started === ended ? { completed_at: new Date().toISOString() } : { active: 'yes' }),
                  created_at: acceptedBefore,
                });
              }
            })();
            await ranBehind;
            return jobs.get(jobId);
          },
        },
      },
    };
    await drain(queue, deps);
    expect(await requests.get(request_id)).toMatchObject({
      status: 'running',
      waiting_for: [running],
      walks: 1,
    });
    expect(queue.sent).toEqual([
      { message: { step: 'wait', request_id }, delaySeconds: ERASURE_RECHECK_SECONDS },
    ]);

    await put(tables.jobs, {
      job_id: running,
      status: 'completed',
      completed_at: new Date().toISOString(),
      created_at: acceptedBefore,
    });
    // The look again, handed over twice: the second walk is begun once, its messages sent twice.
    const look = queue.sent.splice(0, 1)[0]?.message as PersonRequestMessage;
    await runPersonRequestStep(deps, look, () => true);
    await runPersonRequestStep(deps, look, () => true);
    await drain(queue, deps);
    expect(await requests.get(request_id)).toMatchObject({
      status: 'completed',
      walks: 2,
      erased: { deliveries: 2 },
    });
    expect(await everything()).not.toContain(person);
    for (const jobId of [ended, running, later]) expect(await contents.allRecipients(jobId)).toEqual([key]);
  });

  it('never overwrites a write made between its read and its rewrite: it reads the item again', async () => {
    const person = `raced-${randomUUID().slice(0, 8)}@people.example.org`;
    const other = `stays-${randomUUID().slice(0, 8)}@people.example.org`;
    const key = erasedKeyWith(SECRET, person);
    const jobId = randomUUID();
    const item = { job_id: jobId, recipient: other };
    await put(tables.deliveries, { ...item, status: 'sent', message_id: 'ses-r', cc: [person] });
    let raced = false;
    const racing = {
      send: async (command: Parameters<typeof client.send>[0]) => {
        if (command instanceof UpdateCommand && !raced) {
          raced = true;
          // An SES report noted on the email, and its cc changed, after the erasure read it.
          await client.send(
            new UpdateCommand({
              TableName: tables.deliveries,
              Key: item,
              UpdateExpression: 'SET feedback = :feedback, cc = :cc',
              ExpressionAttributeValues: {
                ':feedback': [{ type: 'delivery', at: 'now', detail: 'delivered' }],
                ':cc': [person, 'board@people.example.org'],
              },
            }),
          );
        }
        return client.send(command);
      },
    } as unknown as typeof client;
    const eraser = new DynamoEraser({ client: racing, tables: { deliveries: tables.deliveries }, contents });
    const person_ = { email: person, key, requestId: randomUUID() };
    let after: Record<string, unknown> | undefined;
    do
      ({ next: after } = await eraser.walk(
        'deliveries',
        person_,
        { segment: 0, segments: 1, after },
        () => true,
      ));
    while (after);
    const { Item } = await client.send(
      new GetCommand({ TableName: tables.deliveries, Key: item, ConsistentRead: true }),
    );
    expect(raced).toBe(true);
    expect(Item).toMatchObject({
      feedback: [{ detail: 'delivered' }],
      cc: [key, 'board@people.example.org'],
      message_id: 'ses-r',
    });
  });

  it("moves the person's delivery to its key; when the key has one of the job already, that one stands", async () => {
    const person = `twice-${randomUUID().slice(0, 8)}@people.example.org`;
    const key = erasedKeyWith(SECRET, person);
    const jobId = randomUUID();
    await job(jobId, { recipients: [person] });
    await put(tables.deliveries, {
      job_id: deliveryPartition(jobId, key, 1),
      recipient: key,
      status: 'sent',
      message_id: 'ses-k',
    });
    await put(tables.deliveries, { job_id: jobId, recipient: person, status: 'sent', message_id: 'ses-p' });
    const eraser = new DynamoEraser({ client, tables: { deliveries: tables.deliveries }, contents });
    let after: Record<string, unknown> | undefined;
    let erased = 0;
    do {
      const step = await eraser.walk(
        'deliveries',
        { email: person, key, requestId: randomUUID() },
        { segment: 0, segments: 1, after },
        () => true,
      );
      erased += step.erased;
      after = step.next;
    } while (after);
    expect(erased).toBe(1);
    const read = (recipient: string, partition: string) =>
      client.send(
        new GetCommand({
          TableName: tables.deliveries,
          Key: { job_id: partition, recipient },
          ConsistentRead: true,
        }),
      );
    expect((await read(person, jobId)).Item).toBeUndefined();
    expect((await read(key, deliveryPartition(jobId, key, 1))).Item).toMatchObject({ message_id: 'ses-k' });
  });

  it('completes with zero counts for an address it does not hold', async () => {
    const stranger = `${randomUUID().slice(0, 8)}@nowhere.example.org`;
    const queue = memoryQueue();
    const { request_id } = await acceptPersonRequest(
      { requests, queue, keys },
      { kind: 'erasure', email: stranger, api_key_id: 'key-ops' },
    );
    // The address comes back in while the erasure runs (an entry made again): it stays suppressed
    // after the completion, which removes only the record the acceptance wrote.
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await suppressions.rememberErased([stranger])).toEqual([stranger]);
    await drain(queue, worker(queue));
    const done = await requests.get(request_id);
    expect(done).toMatchObject({ status: 'completed', erased: {} });
    expect(await suppressions.get(stranger)).toMatchObject({ reason: 'erased' });
  });
});
