import type { Construct } from 'constructs';
import { INDEX, TABLE } from '../../lambdas/core/bindings';
import type { MailerApi } from './api';
import type { MailerData } from './data';
import { TableRoutes } from './table-routes';

export interface AuditRoutesProps {
  api: MailerApi;
  data: MailerData;
}

/** `GET /audit` (operator): reads the trail, and may do nothing else to it. */
export class AuditRoutes extends TableRoutes {
  constructor(scope: Construct, id: string, { api, data }: AuditRoutesProps) {
    super(scope, id, { api, binding: TABLE.audit, table: data.audit });
    this.route('GET', '/audit', 'ListAudit', 'api/list-audit.ts', ['dynamodb:Query'], {
      names: [INDEX.auditByEmail, INDEX.auditByAction],
      actions: ['dynamodb:Query'],
    });
  }
}
