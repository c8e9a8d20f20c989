import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { Context, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { EventBridgeBus } from '../../../lambdas/core/events/eventbridge-bus';
import { jobAccepted } from '../../../lambdas/core/events/events';
import type { JobRecord } from '../../../lambdas/core/jobs/job';
import { makePublishEvents, outboxEvents } from '../../../lambdas/worker/publish-events';

const eventBridge = mockClient(EventBridgeClient);
beforeEach(() => eventBridge.reset());

const accepted = (n: number) =>
  jobAccepted({
    job_id: `0b0c8a57-8d3c-4b8e-9a43-4c1a3b7e9f${String(n).padStart(2, '0')}`,
    api_key_id: 'key-1',
    status: 'queued',
    total_emails: 1,
    sent: 0,
    failed: 0,
    created_at: '2026-12-04T10:00:00.000Z',
  } as JobRecord);

/** A stream record of the outbox as Lambda hands it over (numbers as the stream gives them). */
function record(n: number, eventName: DynamoDBRecord['eventName'] = 'INSERT'): DynamoDBRecord {
  const event = accepted(n);
  return {
    eventName,
    dynamodb: {
      SequenceNumber: String(1000 + n),
      Keys: { event_id: { S: event.event_id } },
      ...(eventName === 'REMOVE'
        ? {}
        : {
            NewImage: marshall({ ...event, expires_at: 1 }) as NonNullable<
              DynamoDBRecord['dynamodb']
            >['NewImage'],
          }),
    },
  };
}

/** An invocation with its full 30 s ahead of it. */
const lambdaContext = { getRemainingTimeInMillis: () => 30_000 } as unknown as Context;
const streamEvent = (...records: DynamoDBRecord[]): DynamoDBStreamEvent => ({ Records: records });
const handler = makePublishEvents({
  bus: new EventBridgeBus(new EventBridgeClient({ region: 'us-east-1' }), 'the-bus'),
  wait: async () => {},
});

describe('the publisher (the outbox stream to the bus)', () => {
  it('publishes only first writes: a rewrite of an event or its removal by TTL tells nothing', () => {
    const events = outboxEvents(streamEvent(record(1), record(2, 'MODIFY'), record(3, 'REMOVE'), record(4)));
    expect(events.map(({ sequenceNumber }) => sequenceNumber)).toEqual(['1001', '1004']);
    expect(events[0]?.event).toEqual(accepted(1));
  });

  it('puts the events on the named bus and reports nothing failed', async () => {
    eventBridge.on(PutEventsCommand).callsFake(({ Entries }) => ({
      FailedEntryCount: 0,
      Entries: Entries.map((_: unknown, n: number) => ({ EventId: `id-${n}` })),
    }));
    const answer = await handler(streamEvent(record(1), record(2)), lambdaContext);
    expect(answer).toEqual({ batchItemFailures: [] });
    const [call] = eventBridge.commandCalls(PutEventsCommand);
    expect(call?.args[0].input.Entries).toMatchObject([
      { EventBusName: 'the-bus', Source: 'nonprofit-mailer', DetailType: 'Job Accepted' },
      { EventBusName: 'the-bus', Source: 'nonprofit-mailer', DetailType: 'Job Accepted' },
    ]);
  });

  it('reports the first event the bus keeps refusing, so the stream goes on from it and no later one is lost', async () => {
    eventBridge.on(PutEventsCommand).callsFake(({ Entries }) => ({
      FailedEntryCount: 1,
      Entries: Entries.map((entry: { Detail: string }, n: number) =>
        JSON.parse(entry.Detail).event_id === accepted(2).event_id
          ? { ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }
          : { EventId: `id-${n}` },
      ),
    }));
    const answer = await handler(streamEvent(record(1), record(2), record(3)), lambdaContext);
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: '1002' }] });
  });
});
