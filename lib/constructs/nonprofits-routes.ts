import { Duration } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { INDEX, TABLE } from '../../lambdas/core/bindings';
import type { MailerConfig } from '../config';
import type { MailerApi } from './api';
import type { MailerData } from './data';
import type { ProjectFunction } from './project-function';
import { TableRoutes } from './table-routes';

export interface NonprofitsRoutesProps {
  api: MailerApi;
  data: MailerData;
  config: MailerConfig;
}

/**
 * The nonprofits registry: one function per route, so each holds only the table actions it calls.
 */
export class NonprofitsRoutes extends TableRoutes {
  constructor(scope: Construct, id: string, { api, data, config }: NonprofitsRoutesProps) {
    super(scope, id, { api, binding: TABLE.nonprofits, table: data.nonprofits });
    // Each change is recorded in the audit trail: a create, update and delete in its own transaction,
    // an import once, with its counts.
    const audited = (fn: ProjectFunction) => fn.keepsAudit(data.audit, config.auditRetentionDays);
    // An address erased before comes back suppressed (core/people): an entry made, or imported.
    this.route('POST', '/nonprofits', 'CreateNonprofit', 'api/create-nonprofit.ts', [
      'dynamodb:PutItem',
    ]).remembersErased(data, config.auditRetentionDays);
    this.route(
      'GET',
      '/nonprofits',
      'ListNonprofits',
      'api/list-nonprofits.ts',
      // The whole registry is scanned; a domain is queried on its index.
      ['dynamodb:Scan'],
      { names: [INDEX.nonprofitsByDomain], actions: ['dynamodb:Query'] },
    );
    // Up to 1,000 rows, each a conditional put (and, with on_conflict=update, a conditional update).
    const importer = this.route(
      'POST',
      '/nonprofits/import',
      'ImportNonprofits',
      'api/import-nonprofits.ts',
      ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
      undefined,
      {
        timeout: Duration.seconds(29),
        memorySize: 1024,
        // Each call may write 1,000 items: a per-key throttle well below the plan's rate.
        throttle: { rateLimit: config.importRequestsPerSecond, burstLimit: config.importBurstLimit },
      },
    );
    importer.remembersErased(data, config.auditRetentionDays);
    this.route('GET', '/nonprofits/{email}', 'GetNonprofit', 'api/get-nonprofit.ts', ['dynamodb:GetItem']);
    // An update reads the item first: the audit record names the fields it changed.
    audited(
      this.route('PUT', '/nonprofits/{email}', 'UpdateNonprofit', 'api/update-nonprofit.ts', [
        'dynamodb:GetItem',
        'dynamodb:UpdateItem',
      ]),
    );
    audited(
      this.route('DELETE', '/nonprofits/{email}', 'DeleteNonprofit', 'api/delete-nonprofit.ts', [
        'dynamodb:DeleteItem',
      ]),
    );
  }
}
