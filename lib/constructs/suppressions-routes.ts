import type { Construct } from 'constructs';
import { INDEX, TABLE } from '../../lambdas/core/bindings';
import { SETTING } from '../../lambdas/core/settings';
import type { MailerConfig } from '../config';
import type { MailerApi } from './api';
import type { MailerData } from './data';
import { TableRoutes } from './table-routes';

export interface SuppressionsRoutesProps {
  api: MailerApi;
  data: MailerData;
  config: MailerConfig;
}

/** Operators' routes on the suppression list (API key): one function per route, each with only its table actions. */
export class SuppressionsRoutes extends TableRoutes {
  constructor(scope: Construct, id: string, { api, data, config }: SuppressionsRoutesProps) {
    super(scope, id, { api, binding: TABLE.suppressions, table: data.suppressions });
    this.route('GET', '/suppressions', 'ListSuppressions', 'api/list-suppressions.ts', ['dynamodb:Scan'], {
      names: [INDEX.suppressionsByReason],
      actions: ['dynamodb:Query'],
    });
    // An erased address is found by its key's record.
    this.route('GET', '/suppressions/{email}', 'GetSuppression', 'api/get-suppression.ts', [
      'dynamodb:GetItem',
    ]).bindSecret(SETTING.addressKeySecretArn, data.addressKey);
    // A write reads the record first and is conditioned on it: the audit record names what it replaced.
    this.route('PUT', '/suppressions/{email}', 'PutSuppression', 'api/put-suppression.ts', [
      'dynamodb:PutItem',
      'dynamodb:GetItem',
    ])
      .keepsAudit(data.audit, config.auditRetentionDays)
      // An erased address is suppressed under its key already: a put stores nothing of it.
      .bindSecret(SETTING.addressKeySecretArn, data.addressKey);
    // Lifting an erased address (with the person's consent) deletes its key's record too.
    this.route('DELETE', '/suppressions/{email}', 'DeleteSuppression', 'api/delete-suppression.ts', [
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
    ])
      .keepsAudit(data.audit, config.auditRetentionDays)
      .bindSecret(SETTING.addressKeySecretArn, data.addressKey);
  }
}
