// GET /suppressions?reason=&limit=&cursor=: handler --> suppression list (DynamoDB)
import { z } from 'zod';
import { suppressionsFromEnv } from '../core/adapters';
import { pageLimit } from '../core/cursor';
import { apiHandler, json, parseQuery } from '../core/http';
import type { SuppressionList } from '../core/suppressions/repository';
import { SUPPRESSION_REASONS } from '../core/suppressions/suppression';

const listQuery = z.strictObject({
  reason: z
    .enum(SUPPRESSION_REASONS, { message: `Must be one of ${SUPPRESSION_REASONS.join(', ')}` })
    .optional(),
  limit: pageLimit(50, 100),
  cursor: z.string().min(1, 'Must not be empty').optional(),
});

export const makeListSuppressions = ({ suppressions }: { suppressions: SuppressionList }) =>
  apiHandler(async (event) => {
    const page = await suppressions.list(parseQuery(event, listQuery));
    return json(200, { suppressions: page.items, next_cursor: page.nextCursor });
  });

export const handler = makeListSuppressions({ suppressions: suppressionsFromEnv() });
