// GET /audit?action=&email=&since=&until=&limit=&cursor= (operator): handler --> audit trail (DynamoDB)
import { auditReaderFromEnv } from '../core/adapters';
import { type AuditTrailReader, auditQuery } from '../core/audit/audit';
import { apiHandler, json, parseQuery } from '../core/http';

export const makeListAudit = ({ audit }: { audit: AuditTrailReader }) =>
  apiHandler(async (event) => {
    const page = await audit.list(parseQuery(event, auditQuery));
    return json(200, { records: page.items, next_cursor: page.nextCursor });
  });

export const handler = makeListAudit({ audit: auditReaderFromEnv() });
