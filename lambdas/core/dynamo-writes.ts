import {
  ConditionalCheckFailedException,
  TransactionCanceledException,
  TransactionConflictException,
} from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DeleteCommandInput,
  type DynamoDBDocumentClient,
  PutCommand,
  type PutCommandInput,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { backoff } from './concurrency';

/** A write that decides something: it happens only under its condition. */
export type ConditionalWrite =
  | { Put: PutCommandInput & { ConditionExpression: string } }
  | { Update: UpdateCommandInput & { UpdateExpression: string; ConditionExpression: string } }
  | { Delete: DeleteCommandInput & { ConditionExpression: string } };

/** A record written beside a decisive write (an event, an audit record): it never fails the transaction. */
export interface RecordPut {
  Put: PutCommandInput;
}

/** What a decisive write may carry with it: records put, or items deleted, unconditionally. */
export type RecordWrite = RecordPut | { Delete: DeleteCommandInput };

/**
 * A condition on another item that the decisive write also needs: when it fails, the transaction
 * is cancelled and the error thrown (its reason last among `CancellationReasons`, for the caller).
 */
export interface Guard {
  ConditionCheck: NonNullable<TransactWriteCommandInput['TransactItems']>[number]['ConditionCheck'] & {
    ConditionExpression: string;
  };
}

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

async function writePlainly(client: DynamoDBDocumentClient, write: ConditionalWrite): Promise<void> {
  if ('Put' in write) await client.send(new PutCommand(write.Put));
  else if ('Update' in write) await client.send(new UpdateCommand(write.Update));
  else await client.send(new DeleteCommand(write.Delete));
}

/**
 * A conditional write with the records its success makes true (an outbox event, an audit record)
 * in the same transaction: all or none. Answers false when the write's condition failed (nothing
 * written); with no record it is the plain write. Two writers racing on one item, which as plain
 * writes would give one success and one failed condition, may cancel each other's transactions: a
 * cancel for a conflict is tried again after a jittered wait, and then meets the condition as a
 * plain write would.
 */
export async function writeAtomically(
  client: DynamoDBDocumentClient,
  write: ConditionalWrite,
  alongside: readonly (RecordWrite | Guard | undefined)[],
): Promise<boolean> {
  const records = alongside.filter((record): record is RecordWrite | Guard => record !== undefined);
  for (let attempt = 0; ; attempt++) {
    try {
      if (records.length > 0)
        await client.send(new TransactWriteCommand({ TransactItems: [write, ...records] }));
      else await writePlainly(client, write);
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
