import { randomUUID } from 'node:crypto';
import { mapConcurrently } from '../concurrency';
import { ConflictError } from '../errors';
import type { JobStore } from '../jobs/job-store';
import type { Log } from '../jobs/process-emails';
import type { NonprofitRepository } from '../nonprofits/repository';
import type { SuppressionList } from '../suppressions/repository';
import type { AddressKeys } from './address-keys';
import {
  ERASURE_START_DELAY_SECONDS,
  ERASURE_TABLES,
  type Eraser,
  holdOf,
  LEDGER_SEGMENTS,
  type LedgerSearch,
  MAX_WALKS,
  type NewPersonRequest,
  type PersonRequest,
  type PersonRequestKind,
  type PersonRequestMessage,
  type PersonRequestQueue,
  type PersonRequestStore,
} from './person-requests';

/** Where a request is read: the `Location` of its `202`, and of a `409` that names a request already under way. */
export const requestLocation = (requestId: string) => `/people/requests/${requestId}`;

/** A request of this kind for this address is under way: the answer names it, and where to read it. */
export class RequestUnderWayError extends ConflictError {
  override readonly fields: Record<string, unknown>;
  override readonly headers: Record<string, string>;

  constructor(kind: PersonRequestKind, requestId: string) {
    super(`An ${kind} of this address is under way: read request ${requestId}.`);
    this.fields = { request_id: requestId, kind };
    this.headers = { location: requestLocation(requestId) };
  }
}

export interface AcceptPersonRequestDependencies {
  requests: Pick<PersonRequestStore, 'create' | 'discard'>;
  queue: PersonRequestQueue;
  /** The address key: an erasure's hold and records name the address by it; an export looks for that hold. */
  keys: AddressKeys;
  now?: () => Date;
}

/**
 * Records the request and queues its start. An erasure's acceptance suppresses the address at
 * once, under the address and under its key, and deletes its registry entry, in the transaction
 * of the request (see `PersonRequestStore.create`); its start waits a few seconds (see
 * `ERASURE_START_DELAY_SECONDS`). When the start cannot be queued the request is discarded and the
 * error thrown, so nothing is left that no worker will ever pick up.
 */
export async function acceptPersonRequest(
  deps: AcceptPersonRequestDependencies,
  ask: { kind: PersonRequestKind; email: string; api_key_id: string },
): Promise<{ request_id: string }> {
  // An erasure holds the address by its key (it stores no address past its run); an export by the
  // address, and it is refused while an erasure holds the key.
  const key = await deps.keys.erasedKeyOf(ask.email);
  const request: NewPersonRequest = {
    ...ask,
    request_id: randomUUID(),
    requested_at: deps.now?.() ?? new Date(),
    ...(ask.kind === 'erasure'
      ? { hold: holdOf('erasure', key), address_key: key }
      : { hold: holdOf('export', ask.email), unless_held: holdOf('erasure', key) }),
  };
  const created = await deps.requests.create(request);
  if (!created.created) throw new RequestUnderWayError(created.kind, created.held_by);
  try {
    await deps.queue.send(
      [{ step: 'start', request_id: request.request_id }],
      ask.kind === 'erasure' ? ERASURE_START_DELAY_SECONDS : 0,
    );
  } catch (error) {
    await deps.requests.discard(request);
    throw error;
  }
  return { request_id: request.request_id };
}

export interface PersonRequestWorkerDependencies {
  requests: PersonRequestStore;
  queue: PersonRequestQueue;
  ledger: LedgerSearch;
  nonprofits: Pick<NonprofitRepository, 'get'>;
  suppressions: Pick<SuppressionList, 'get'>;
  /** What an erasure walks, the jobs it waits out, and how long between its looks at them. */
  erasure?:
    | {
        eraser: Eraser;
        jobs: Pick<JobStore, 'activeJobs' | 'scheduledBefore' | 'get'>;
        recheckSeconds: number;
      }
    | undefined;
  log: Log;
  now?: () => Date;
  /** Segments each table is walked in (`LEDGER_SEGMENTS`; tests walk in fewer or more). */
  segments?: number;
}

type Walk = Extract<PersonRequestMessage, { step: 'walk' }>;

/** A walk's number among the request's segments: the set of those done is counted against the total. */
const segmentNumber = (message: Walk) =>
  message.table === undefined
    ? message.segment
    : ERASURE_TABLES.indexOf(message.table) * message.segments + message.segment;

/**
 * One step of a request. An export's `start` reads the registry entry and the suppression record
 * and sends one walk message per ledger segment. An erasure's `start` notes the jobs running (their
 * queued emails may still name the address) and `wait` looks again until they have ended, then
 * sends one walk message per segment of each table. A `walk` reads its segment on while time is
 * left, stores what it found (an export) or erases it (an erasure), and either sends the rest on or
 * counts the segment done, completing the request after the last one. A step of a request that is
 * gone or complete does nothing.
 */
export async function runPersonRequestStep(
  deps: PersonRequestWorkerDependencies,
  message: PersonRequestMessage,
  timeLeft: () => boolean,
): Promise<void> {
  const request = await deps.requests.get(message.request_id);
  if (!request || request.status === 'completed' || request.email === undefined) {
    deps.log('INFO', 'A step of a request that is gone or complete: nothing to do', {
      request_id: message.request_id,
      step: message.step,
    });
    // A completion whose release failed is handed over again: the hold goes now.
    if (request?.status === 'completed') await deps.requests.release(request);
    return;
  }
  const person = { ...request, email: request.email };
  // A long run (an erasure waiting out a long job, a walk of a large table) keeps its hold on the
  // address and its records from expiring under it.
  await deps.requests.keepAlive(person);
  if (person.kind === 'erasure') return eraseStep(deps, person, message, timeLeft);
  if (message.step === 'start') {
    const segments = deps.segments ?? LEDGER_SEGMENTS;
    const [nonprofit, suppression] = await Promise.all([
      deps.nonprofits.get(person.email),
      deps.suppressions.get(person.email),
    ]);
    await deps.requests.started(person.request_id, {
      segments,
      nonprofit: nonprofit ?? null,
      suppression: suppression ?? null,
    });
    await deps.queue.send(
      Array.from({ length: segments }, (_, segment) => ({
        step: 'walk' as const,
        request_id: person.request_id,
        segment,
        segments,
      })),
    );
    return;
  }
  if (message.step !== 'walk') return;

  // Stored page by page, before the hand-over: a step handed over again finds the same and stores it once.
  const { next } = await deps.ledger.walk(person.email, message, timeLeft, (found) =>
    deps.requests.addFindings(person.request_id, found),
  );
  if (next) {
    await deps.queue.send([{ ...message, after: next }]);
    return;
  }
  const { allDone } = await deps.requests.segmentDone(person.request_id, 0, segmentNumber(message));
  if (allDone) {
    await deps.requests.complete(person, deps.now?.() ?? new Date());
    deps.log('INFO', 'A person request is complete', { request_id: person.request_id, kind: person.kind });
  }
}

/** Until when a job may have been accepted with the address (see `ERASURE_START_DELAY_SECONDS`). */
const acceptedUntil = (request: Pick<PersonRequest, 'requested_at'>) =>
  new Date(Date.parse(request.requested_at) + ERASURE_START_DELAY_SECONDS * 1_000);

/**
 * The jobs an erasure's start notes: those running, whose messages may carry the address, and
 * those scheduled, whose recipient lists may (it looks at them again after each walk). Only jobs
 * accepted before the erasure: one accepted after cannot name the person (the registry entry is
 * gone, and a cc of the address is stored by its key, see `acceptJob`).
 */
async function jobsAtStart(
  jobs: Pick<JobStore, 'activeJobs' | 'scheduledBefore'>,
  request: Pick<PersonRequest, 'requested_at'>,
): Promise<{ running: string[]; scheduled: string[] }> {
  const until = acceptedUntil(request);
  const [running, scheduled] = await Promise.all([
    jobs.activeJobs(until),
    // Every scheduled job, whatever its time (the index sorts times as text: a year of four digits).
    jobs.scheduledBefore(new Date('9999-12-31T23:59:59.999Z')),
  ]);
  return {
    running: running.map((job) => job.job_id),
    scheduled: scheduled.filter((job) => job.created_at <= until.toISOString()).map((job) => job.job_id),
  };
}

/**
 * The scheduled jobs noted at the start that ran during the walk that just ended: running now, or
 * ended since it began. Each may have written the address behind the walk (its deliveries, from a
 * recipient list read before the walk rewrote it); one that ended before the walk began did so
 * before the walk, which found it. A retried job needs no such look: a retry leaves suppressed
 * addresses out, and the erased address is suppressed from the acceptance on.
 */
async function ranDuringWalk(
  jobs: Pick<JobStore, 'get'>,
  request: PersonRequest,
): Promise<{ ran: string[]; running: string[] }> {
  const walkStarted = request.walk_started_at ?? request.requested_at;
  const looked = await mapConcurrently(request.scheduled_jobs ?? [], 10, async (jobId) => ({
    jobId,
    job: await jobs.get(jobId),
  }));
  const ran = looked.filter(
    ({ job }) =>
      job !== undefined &&
      job.status !== 'scheduled' &&
      // Cancelled before it started: it sent nothing.
      !(job.status === 'cancelled' && job.started_at === undefined) &&
      (job.active !== undefined || (job.completed_at !== undefined && job.completed_at >= walkStarted)),
  );
  return {
    ran: ran.map(({ jobId }) => jobId),
    running: ran.filter(({ job }) => job?.active !== undefined).map(({ jobId }) => jobId),
  };
}

async function eraseStep(
  deps: PersonRequestWorkerDependencies,
  request: PersonRequest & { email: string },
  message: PersonRequestMessage,
  timeLeft: () => boolean,
): Promise<void> {
  const { erasure } = deps;
  const key = request.address_key;
  if (!erasure || !key) throw new Error('This worker was not given what an erasure needs');
  const now = () => deps.now?.() ?? new Date();
  if (message.step === 'start' || message.step === 'wait') {
    let running: string[];
    if (message.step === 'start' && request.walk_requested === undefined) {
      const noted = await jobsAtStart(erasure.jobs, request);
      running = noted.running;
      await deps.requests.waitFor(request.request_id, running, { scheduled: noted.scheduled, walk: 1 });
    } else {
      // A look again at the jobs waited for (a start handed over again is one too).
      running = (
        await Promise.all(
          (request.waiting_for ?? []).map(async (jobId) =>
            (await erasure.jobs.get(jobId))?.active ? [jobId] : [],
          ),
        )
      ).flat();
      await deps.requests.waitFor(request.request_id, running);
    }
    if (running.length > 0) {
      await deps.queue.send([{ step: 'wait', request_id: request.request_id }], erasure.recheckSeconds);
      return;
    }
    // The walk asked for, numbered, begun once (see `started`). Its messages are sent by every step
    // that gets here: one handed over again after a failed send must send them, and a copy of a
    // walk's message only walks its segment again.
    const walk = request.walk_requested ?? 1;
    if ((request.walks ?? 0) > walk) return;
    const segments = deps.segments ?? LEDGER_SEGMENTS;
    const tables = erasure.eraser.tables();
    if ((request.walks ?? 0) < walk)
      await deps.requests.started(request.request_id, {
        segments: tables.length * segments,
        walk,
        at: now(),
      });
    await deps.queue.send(
      tables.flatMap((table) =>
        Array.from({ length: segments }, (_, segment) => ({
          step: 'walk' as const,
          request_id: request.request_id,
          table,
          segment,
          segments,
          walk,
        })),
      ),
    );
    return;
  }
  // A message of an earlier walk, handed over late: the current walk covers its segment. (A walk's
  // message from before walks were numbered is walk 0, as its request's.)
  const walk = message.walk ?? 0;
  if (walk !== (request.walks ?? 0)) return;
  const table = message.table ?? 'deliveries';
  const { erased, next } = await erasure.eraser.walk(
    table,
    { email: request.email, key, requestId: request.request_id },
    message,
    timeLeft,
  );
  await deps.requests.countErased(request.request_id, table, erased);
  if (next) {
    await deps.queue.send([{ ...message, after: next }]);
    return;
  }
  const { allDone } = await deps.requests.segmentDone(request.request_id, walk, segmentNumber(message));
  if (!allDone) return;
  const counted = (await deps.requests.get(request.request_id)) ?? request;
  const { ran, running } = await ranDuringWalk(erasure.jobs, counted);
  if (ran.length > 0) {
    if (walk < MAX_WALKS) {
      // Waited out, then walked again: noted, then sent. A step that fails between the two is
      // handed over again, finds this walk still the current one, and does both again.
      await deps.requests.waitFor(request.request_id, running, { walk: walk + 1 });
      await deps.queue.send(
        [{ step: 'wait', request_id: request.request_id }],
        running.length > 0 ? erasure.recheckSeconds : 0,
      );
      deps.log('INFO', 'Scheduled jobs ran during the erasure: it waits them out and walks again', {
        request_id: request.request_id,
        jobs: ran.length,
        walk,
      });
      return;
    }
    deps.log(
      'WARN',
      'Scheduled jobs ran during the last walk the erasure makes: it completes without another',
      {
        request_id: request.request_id,
        jobs: ran,
      },
    );
  }
  await deps.requests.completeErasure({ ...counted, email: request.email, address_key: key }, now());
  deps.log('INFO', 'An erasure is complete', { request_id: request.request_id, erased: counted.erased });
}
