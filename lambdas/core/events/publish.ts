import { backoff } from '../concurrency';
import { EVENT_SOURCE, type OutboxEvent } from './events';

/** PutEvents takes at most ten entries a call. */
export const EVENTS_PER_PUT = 10;
/** Tries at the entries EventBridge refused for now (throttled, say) before the rest is handed back. */
const MAX_ATTEMPTS = 5;
/**
 * Refusals no retry can mend: the event itself is wrong. Anything else (a throttle, an internal
 * failure, access denied by a bus policy someone can fix) is tried again until it succeeds.
 */
const REFUSED_FOR_GOOD = new Set(['MalformedDetail', 'InvalidArgument', 'ValidationException']);

/** An event as the bus takes it. */
export interface BusEntry {
  source: typeof EVENT_SOURCE;
  detailType: string;
  detail: string;
  time: Date;
}

/** The bus's answer for one entry: taken, or refused with EventBridge's error code. */
export type EntryResult = { taken: true } | { taken: false; code: string; message?: string | undefined };

export interface EventBus {
  /** Puts up to ten entries; answers for each in order. */
  put(entries: readonly BusEntry[]): Promise<EntryResult[]>;
}

export interface PublishDependencies {
  bus: EventBus;
  /** Waits between tries (jittered); tests pass none. */
  wait?: (attempt: number) => Promise<void>;
  /** Whether there is time for another call to the bus (the invocation's deadline). */
  timeLeft?: () => boolean;
}

export interface Published {
  /** How many events, from the first, are done (put on the bus, or dropped below). */
  done: number;
  /** Events the bus refused for good (a malformed detail): dropped, named, never blocking the rest. */
  dropped: { event_id: string; code: string; message?: string | undefined }[];
}

/** An outbox event as the bus takes it: the common fields first, the rest by name (the outbox keeps no order). */
function entryOf(event: OutboxEvent): BusEntry {
  const { version, event_id, occurred_at, ...fields } = event.detail as unknown as Record<string, unknown>;
  const ordered = Object.fromEntries(Object.entries(fields).sort(([a], [b]) => a.localeCompare(b)));
  return {
    source: EVENT_SOURCE,
    detailType: event.detail_type,
    detail: JSON.stringify({ version, event_id, occurred_at, ...ordered }),
    time: new Date(event.detail.occurred_at),
  };
}

/**
 * Puts the outbox's new events on the bus, ten to a call; entries refused for now are tried again a
 * few times. Answers how many, from the first, are done: the event source hands the rest over again.
 * A call that fails outright, or no time left, ends the run there. An event is put once in all but
 * one case: an entry refused for now ahead of others the same call took hands those over again, and
 * they go out a second time, under the same `event_id`.
 */
export async function publishEvents(
  deps: PublishDependencies,
  events: readonly OutboxEvent[],
): Promise<Published> {
  const wait = deps.wait ?? ((attempt: number) => backoff(attempt, 100));
  const dropped: Published['dropped'] = [];
  for (let start = 0; start < events.length; start += EVENTS_PER_PUT) {
    if (deps.timeLeft && !deps.timeLeft()) return { done: start, dropped };
    const part = events.slice(start, start + EVENTS_PER_PUT);
    let pending = part.map((event, index) => ({ index, event, entry: entryOf(event) }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt >= MAX_ATTEMPTS)
        return { done: start + Math.min(...pending.map(({ index }) => index)), dropped };
      if (attempt > 0) await wait(attempt - 1);
      let results: EntryResult[];
      try {
        results = await deps.bus.put(pending.map(({ entry }) => entry));
      } catch {
        // Throttled past the SDK's retries, timed out, denied: what this part holds goes back.
        return { done: start + Math.min(...pending.map(({ index }) => index)), dropped };
      }
      pending = pending.filter(({ event }, n) => {
        const result = results[n];
        if (result?.taken) return false;
        if (!result || !REFUSED_FOR_GOOD.has(result.code)) return true;
        dropped.push({ event_id: event.event_id, code: result.code, message: result.message });
        return false;
      });
    }
  }
  return { done: events.length, dropped };
}
