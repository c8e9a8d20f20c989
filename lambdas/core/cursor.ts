import { ValidationError } from './errors';
import * as z from './zod';

/**
 * Opaque pagination cursors. A cursor carries the DynamoDB key to resume from and the query it was
 * issued for; decoding checks both against schemas, so a forged, truncated or foreign cursor is a
 * 400 and never reaches DynamoDB as a malformed ExclusiveStartKey (which would be a 500).
 */

const envelope = z.object({ v: z.literal(1), q: z.string(), k: z.record(z.string(), z.unknown()) });

export function encodeCursor(key: Record<string, unknown>, query: string): string {
  return Buffer.from(JSON.stringify({ v: 1, q: query, k: key })).toString('base64url');
}

export function decodeCursor<S extends z.ZodType>(cursor: string, query: string, keySchema: S): z.output<S> {
  const invalid = () =>
    new ValidationError('Invalid cursor', [
      { field: 'query.cursor', message: 'Not a cursor issued for this query; start again without one' },
    ]);
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  const parsedEnvelope = envelope.safeParse(decoded);
  if (!parsedEnvelope.success || parsedEnvelope.data.q !== query) throw invalid();
  const key = keySchema.safeParse(parsedEnvelope.data.k);
  if (!key.success) throw invalid();
  return key.data;
}

/** A page of results and the cursor of the next one (`null` on the last page). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * The page of one DynamoDB read that asked for `limit + 1` items: the extra item, or DynamoDB's own
 * `LastEvaluatedKey`, says another page follows, so the last page says so (`nextCursor: null`)
 * instead of handing out a cursor to an empty one.
 */
export function pageFrom<T>(
  found: readonly T[],
  limit: number,
  lastEvaluatedKey: unknown,
  resume: { key: (item: T) => Record<string, unknown>; scope: string },
): Page<T> {
  const items = found.slice(0, limit);
  const last = items.at(-1);
  const more = found.length > limit || lastEvaluatedKey !== undefined;
  return {
    items,
    nextCursor: more && last !== undefined ? encodeCursor(resume.key(last), resume.scope) : null,
  };
}

export const pageLimit = (defaultLimit: number, max: number) =>
  z.coerce
    .number({ message: 'Must be a number' })
    .int('Must be a whole number')
    .min(1, 'Must be at least 1')
    .max(max, `Must be at most ${max}`)
    .default(defaultLimit);
