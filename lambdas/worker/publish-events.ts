// DynamoDB stream of the outbox table: publisher --> the stack's EventBridge bus (PutEvents)

import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AttributeValue as SdkAttributeValue } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { Context, DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { EventBridgeBus } from '../core/events/eventbridge-bus';
import type { OutboxEvent } from '../core/events/events';
import { type PublishDependencies, publishEvents } from '../core/events/publish';
import { METRIC } from '../core/observability/metric-names';
import { logger, metrics } from '../core/observability/telemetry';
import { readSettings, SETTING } from '../core/settings';
import { workerHandler } from './support';

/** The events a stream batch brings: each outbox item's first write (a rewrite or TTL's removal tells nothing new). */
export function outboxEvents(event: DynamoDBStreamEvent): { sequenceNumber: string; event: OutboxEvent }[] {
  return event.Records.flatMap((record) => {
    const image = record.dynamodb?.NewImage;
    const sequenceNumber = record.dynamodb?.SequenceNumber;
    if (record.eventName !== 'INSERT' || !image || !sequenceNumber) return [];
    const { event_id, detail_type, detail } = unmarshall(image as Record<string, SdkAttributeValue>);
    return [{ sequenceNumber, event: { event_id, detail_type, detail } as OutboxEvent }];
  });
}

/**
 * Publishes the batch's events; the first not done is reported, so the stream hands over again from
 * it (the ones before it are done). Nothing is dropped but an event the bus refuses for good (a
 * malformed detail), which is logged and counted: retrying it would hold every later event for a day.
 */
export const makePublishEvents = (deps: Omit<PublishDependencies, 'timeLeft'>) =>
  workerHandler(async (event: DynamoDBStreamEvent, context: Context): Promise<DynamoDBBatchResponse> => {
    const events = outboxEvents(event);
    const { done, dropped } = await publishEvents(
      // A call to the bus takes a few seconds at worst: none is started in the last ten.
      { ...deps, timeLeft: () => context.getRemainingTimeInMillis() > 10_000 },
      events.map(({ event: told }) => told),
    );
    const published = done - dropped.length;
    if (published > 0) metrics.addMetric(METRIC.eventsPublished, MetricUnit.Count, published);
    if (dropped.length > 0) {
      metrics.addMetric(METRIC.eventsRefused, MetricUnit.Count, dropped.length);
      logger.error('The bus refused events for good; they are not published', { dropped });
    }
    const first = events[done];
    if (!first) return { batchItemFailures: [] };
    logger.warn('Events not taken by the bus; handed back to the stream', {
      done,
      left: events.length - done,
      first_event_id: first.event.event_id,
    });
    return { batchItemFailures: [{ itemIdentifier: first.sequenceNumber }] };
  });

// Built here, not in core/adapters.ts: every function imports that, and only this one needs
// EventBridge's client loaded at its cold start.
export const handler = makePublishEvents({
  bus: new EventBridgeBus(new EventBridgeClient({}), readSettings({ name: SETTING.eventBusName }).name),
});
