// GET /suppressions?reason=&limit=&cursor=: handler --> suppression list (DynamoDB)
import { suppressionsFromEnv } from '../core/adapters';
import { apiHandler, json, parseQuery } from '../core/http';
import type { SuppressionList } from '../core/suppressions/repository';
import { suppressionListQuery } from '../core/suppressions/suppression';

export const makeListSuppressions = ({ suppressions }: { suppressions: SuppressionList }) =>
  apiHandler(async (event) => {
    const page = await suppressions.list(parseQuery(event, suppressionListQuery));
    return json(200, { suppressions: page.items, next_cursor: page.nextCursor });
  });

export const handler = makeListSuppressions({ suppressions: suppressionsFromEnv() });
