import {
  ConditionalCheckFailedException,
  TransactionCanceledException,
  TransactionConflictException,
} from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  PutCommand,
  type PutCommandInput,
  TransactWriteCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { backoff } from '../../concurrency';
import type { OutboxEvent } from '../events';

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

export type ConditionalWrite =
  | { Put: PutCommandInput & { ConditionExpression: string } }
  | { Update: UpdateCommandInput & { UpdateExpression: string; ConditionExpression: string } };

/**
 * Whether a write lost a race with a transaction on the same item: its own transaction cancelled
 * for a conflict, or a plain write refused while another writer's transaction held the item.
 */
function conflicted(error: unknown): boolean {
  if (error instanceof TransactionConflictException) return true;
  if (!(error instanceof TransactionCanceledException)) return false;
  return (error.CancellationReasons ?? []).some((reason) => reason.Code === 'TransactionConflict');
}

/** Tries at a write that lost a race with another writer's transaction on the same item. */
const MAX_ATTEMPTS = 8;

/**
 * A conditional write, with the event its success makes true written in the same transaction: both
 * or neither. Answers false when the write's condition failed (nothing written); without an outbox
 * or an event it is the plain write. Two writers racing on one item, which as plain writes would
 * give one success and one failed condition, may cancel each other's transactions: a cancel for a
 * conflict is tried again after a jittered wait, and then meets the condition as a plain write would.
 */
export async function writeTelling(
  client: DynamoDBDocumentClient,
  write: ConditionalWrite,
  outbox: EventOutbox | undefined,
  event: OutboxEvent | undefined,
  now?: Date,
): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      if (outbox && event)
        await client.send(new TransactWriteCommand({ TransactItems: [write, outbox.put(event, now)] }));
      else if ('Put' in write) await client.send(new PutCommand(write.Put));
      else await client.send(new UpdateCommand(write.Update));
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      if (
        error instanceof TransactionCanceledException &&
        error.CancellationReasons?.[0]?.Code === 'ConditionalCheckFailed'
      )
        return false;
      if (!conflicted(error) || attempt + 1 >= MAX_ATTEMPTS) throw error;
      await backoff(attempt);
    }
  }
}
