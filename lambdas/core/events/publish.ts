import { backoff } from '../concurrency';
import type { JobStore } from '../jobs/job-store';
import { EVENT_SOURCE, type OutboxEvent, withJobCounts } from './events';

/** PutEvents takes at most ten entries a call. */
export const EVENTS_PER_PUT = 10;
/** Tries at the entries EventBridge refused (throttled, say) before the batch is handed back. */
const MAX_ATTEMPTS = 5;

/** An event as the bus takes it. */
export interface BusEntry {
  source: typeof EVENT_SOURCE;
  detailType: string;
  detail: string;
  time: Date;
}

export interface EventBus {
  /** Puts up to ten entries; answers, per entry, whether the bus took it. */
  put(entries: readonly BusEntry[]): Promise<boolean[]>;
}

export interface PublishDependencies {
  bus: EventBus;
  /** A job's final counts, for `Job Completed` and `Job Cancelled`. */
  jobs: Pick<JobStore, 'get'>;
  /** Waits between tries (jittered); tests pass none. */
  wait?: (attempt: number) => Promise<void>;
}

const ENDED = new Set(['Job Completed', 'Job Cancelled']);

/** An outbox event, completed where its writer could not know everything, as the bus takes it. */
async function entryOf(deps: PublishDependencies, event: OutboxEvent): Promise<BusEntry> {
  let told = event;
  if (ENDED.has(event.detail_type)) {
    const job = await deps.jobs.get((event.detail as { job_id: string }).job_id);
    if (job) told = withJobCounts(event, job);
  }
  // The outbox hands the detail back in no order: the common fields first, the rest by name, so
  // every event of a type reads alike.
  const { version, event_id, occurred_at, ...fields } = told.detail as unknown as Record<string, unknown>;
  const ordered = Object.fromEntries(Object.entries(fields).sort(([a], [b]) => a.localeCompare(b)));
  return {
    source: EVENT_SOURCE,
    detailType: told.detail_type,
    detail: JSON.stringify({ version, event_id, occurred_at, ...ordered }),
    time: new Date(told.detail.occurred_at),
  };
}

/**
 * Puts the outbox's new events on the bus, in order, ten to a call; entries the bus refused are
 * tried again a few times. Answers how many, from the first, were published: the event source
 * hands over again from the first that was not (and those after it: one of them taken on an
 * earlier try is then published twice, under its same `event_id`).
 */
export async function publishEvents(
  deps: PublishDependencies,
  events: readonly OutboxEvent[],
): Promise<number> {
  const wait = deps.wait ?? ((attempt: number) => backoff(attempt, 100));
  for (let start = 0; start < events.length; start += EVENTS_PER_PUT) {
    const part = events.slice(start, start + EVENTS_PER_PUT);
    let pending = await Promise.all(
      part.map(async (event, index) => ({ index, entry: await entryOf(deps, event) })),
    );
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt >= MAX_ATTEMPTS) return start + Math.min(...pending.map(({ index }) => index));
      if (attempt > 0) await wait(attempt - 1);
      const taken = await deps.bus.put(pending.map(({ entry }) => entry));
      pending = pending.filter((_, n) => !taken[n]);
    }
  }
  return events.length;
}
