// DynamoDB stream of the outbox table: publisher --> the stack's EventBridge bus (PutEvents); ended jobs' counts from the jobs table

import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AttributeValue as SdkAttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { eventBusFromEnv, jobsFromEnv } from '../core/adapters';
import type { OutboxEvent } from '../core/events/events';
import { type PublishDependencies, publishEvents } from '../core/events/publish';
import { METRIC } from '../core/observability/metric-names';
import { logger, metrics } from '../core/observability/telemetry';
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
 * Publishes in order; the first event not published is reported, so the stream hands over again
 * from it (the ones before it are done). Nothing is dropped: the mapping retries until it succeeds.
 */
export const makePublishEvents = (deps: PublishDependencies) =>
  workerHandler(async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
    const events = outboxEvents(event);
    const published = await publishEvents(
      deps,
      events.map(({ event: told }) => told),
    );
    if (published > 0) metrics.addMetric(METRIC.eventsPublished, MetricUnit.Count, published);
    const first = events[published];
    if (!first) return { batchItemFailures: [] };
    logger.warn('Events not taken by the bus; handed back to the stream', {
      published,
      left: events.length - published,
      first_event_id: first.event.event_id,
    });
    return { batchItemFailures: [{ itemIdentifier: first.sequenceNumber }] };
  });

export const handler = makePublishEvents({ bus: eventBusFromEnv(), jobs: jobsFromEnv() });
