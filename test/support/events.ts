import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { expect } from 'vitest';
import { eventFileName } from '../../contract/events';
import { DETAIL_TYPES, type DetailType, EVENT_SOURCE } from '../../lambdas/core/events/events';
import type { DeliveredEvent } from '../../local/event-bus';
import { waitFor } from './runtime-process';

/**
 * The events' published schemas, as the files hold them (`contract/events/`): every event a test
 * reads is held to its detail-type's schema, so a field the publisher adds without the schema, or
 * drops, fails the test that saw it.
 */
const directory = new URL('../../contract/events/', import.meta.url);
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
const validators = new Map<string, ValidateFunction>(
  readdirSync(directory).map((file) => [
    file,
    ajv.compile(JSON.parse(readFileSync(new URL(file, directory), 'utf8')) as object),
  ]),
);

/** Fails, naming the problem, unless the detail matches its detail-type's published schema. */
export function expectPublishedShape(type: DetailType, detail: unknown): void {
  const validate = validators.get(eventFileName(type));
  if (!validate) throw new Error(`No schema file for ${type}: run npm run openapi`);
  expect(validate(detail), `${type}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(detail)}`).toBe(
    true,
  );
}

/**
 * The events the local EventBridge received (`npm start` prints where), of one detail-type when
 * given, each held to the published envelope and schema.
 */
export async function readEvents(eventsUrl: string, type?: DetailType): Promise<DeliveredEvent[]> {
  const url = type ? `${eventsUrl}?detail-type=${encodeURIComponent(type)}` : eventsUrl;
  const events = (await (await fetch(url)).json()) as DeliveredEvent[];
  for (const event of events) {
    expect(event.source).toBe(EVENT_SOURCE);
    expect(DETAIL_TYPES).toContain(event['detail-type']);
    expectPublishedShape(event['detail-type'] as DetailType, event.detail);
  }
  return events;
}

/**
 * The events of one type whose detail has these fields, once there is at least one: the publisher
 * puts an event on the bus a moment after its fact (the outbox's stream is read every 200 ms, in
 * batches gathered for up to a second). When the test had to wait for it, it reads again after that
 * long, so that a second publication of the same fact, in the batch after, is there to be counted
 * (one already there on the first read was published at least that long ago, or with its batch).
 */
export async function toldEvents(
  eventsUrl: string,
  type: DetailType,
  fields: Record<string, unknown>,
): Promise<DeliveredEvent[]> {
  const matching = async () =>
    (await readEvents(eventsUrl, type)).filter((event) =>
      Object.entries(fields).every(
        ([name, value]) => (event.detail as Record<string, unknown>)[name] === value,
      ),
    );
  const first = await matching();
  if (first.length > 0) return first;
  // Published a moment ago: a second publication of the fact, in the batch after, would follow it.
  await waitFor(matching, (found) => found.length > 0, 30_000);
  await sleep(PUBLISHER_BATCH_MS);
  return matching();
}

/** The publisher's batching window and a poll of the stream (lib/constructs/events.ts, local/stream-source.ts). */
const PUBLISHER_BATCH_MS = 1_500;
