import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { type ConditionalWrite, writeAtomically } from '../../dynamo-writes';
import type { OutboxEvent } from '../events';

export type { ConditionalWrite } from '../../dynamo-writes';

/**
 * How long an event stays in the outbox: past the stream's 24 hours, after which the publisher can
 * no longer be handed it. DynamoDB's TTL removes it later (the removal is a stream record the
 * publisher's filter leaves out).
 */
const OUTBOX_RETENTION_SECONDS = 3 * 24 * 3600;

/** The outbox table: events wait there, each written with the fact it tells of, until they are published. */
export class EventOutbox {
  constructor(private readonly tableName: string) {}

  /**
   * The outbox's write of an event, for the transaction that decides its fact. Unconditional, so it
   * never fails the transaction: an event written again under the same id (a fact with a natural
   * key, told twice) is a MODIFY on the stream, and only INSERTs are published.
   */
  put(event: OutboxEvent, now: Date = new Date()) {
    return {
      Put: {
        TableName: this.tableName,
        Item: { ...event, expires_at: Math.floor(now.getTime() / 1000) + OUTBOX_RETENTION_SECONDS },
      },
    };
  }
}

/**
 * A conditional write, with the event its success makes true written in the same transaction: both
 * or neither (see `writeAtomically`). Answers false when the write's condition failed.
 */
export function writeTelling(
  client: DynamoDBDocumentClient,
  write: ConditionalWrite,
  outbox: EventOutbox | undefined,
  event: OutboxEvent | undefined,
  now?: Date,
): Promise<boolean> {
  return writeAtomically(client, write, [outbox && event ? outbox.put(event, now) : undefined]);
}
