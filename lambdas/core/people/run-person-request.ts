import { randomUUID } from 'node:crypto';
import { ConflictError } from '../errors';
import type { Log } from '../jobs/process-emails';
import type { NonprofitRepository } from '../nonprofits/repository';
import type { SuppressionList } from '../suppressions/repository';
import {
  LEDGER_SEGMENTS,
  type LedgerSearch,
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
    this.fields = { request_id: requestId };
    this.headers = { location: requestLocation(requestId) };
  }
}

export interface AcceptPersonRequestDependencies {
  requests: Pick<PersonRequestStore, 'create' | 'discard'>;
  queue: PersonRequestQueue;
  now?: () => Date;
}

/**
 * Records the request and queues its start. When the start cannot be queued the request is
 * discarded and the error thrown, so nothing is left that no worker will ever pick up.
 */
export async function acceptPersonRequest(
  deps: AcceptPersonRequestDependencies,
  ask: { kind: PersonRequestKind; email: string; api_key_id: string },
): Promise<{ request_id: string }> {
  const request = { ...ask, request_id: randomUUID(), requested_at: deps.now?.() ?? new Date() };
  const created = await deps.requests.create(request);
  if (!created.created) throw new RequestUnderWayError(ask.kind, created.held_by);
  try {
    await deps.queue.send([{ step: 'start', request_id: request.request_id }]);
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
  log: Log;
  now?: () => Date;
  /** Segments the ledger is walked in (`LEDGER_SEGMENTS`; tests walk it in fewer or more). */
  segments?: number;
}

/**
 * One step of a request. `start` reads the registry entry and the suppression record and sends
 * one walk message per ledger segment; `walk` reads its segment on while time is left, stores what
 * it found, and either sends the rest on or counts the segment done, completing the request after
 * the last one. A step of a request that is gone or complete does nothing.
 */
export async function runPersonRequestStep(
  deps: PersonRequestWorkerDependencies,
  message: PersonRequestMessage,
  timeLeft: () => boolean,
): Promise<void> {
  const request = await deps.requests.get(message.request_id);
  if (!request || request.status === 'completed') {
    deps.log('INFO', 'A step of a request that is gone or complete: nothing to do', {
      request_id: message.request_id,
      step: message.step,
    });
    return;
  }
  if (message.step === 'start') {
    const segments = deps.segments ?? LEDGER_SEGMENTS;
    const [nonprofit, suppression] = await Promise.all([
      deps.nonprofits.get(request.email),
      deps.suppressions.get(request.email),
    ]);
    await deps.requests.started(request.request_id, {
      segments,
      nonprofit: nonprofit ?? null,
      suppression: suppression ?? null,
    });
    await deps.queue.send(
      Array.from({ length: segments }, (_, segment) => ({
        step: 'walk' as const,
        request_id: request.request_id,
        segment,
        segments,
      })),
    );
    return;
  }

  const { found, next } = await deps.ledger.walk(request.email, message, timeLeft);
  // Stored before the hand-over: a step handed over again finds the same and stores it once.
  if (found.length > 0) await deps.requests.addFindings(request.request_id, found);
  if (next) {
    await deps.queue.send([{ ...message, after: next }]);
    return;
  }
  const { allDone } = await deps.requests.segmentDone(request.request_id, message.segment);
  if (allDone) {
    await deps.requests.complete(request, deps.now?.() ?? new Date());
    deps.log('INFO', 'A person request is complete', { request_id: request.request_id, kind: request.kind });
  }
}
