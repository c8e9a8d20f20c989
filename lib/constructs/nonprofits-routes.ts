import type { Construct } from 'constructs';
import { INDEX, TABLE } from '../../lambdas/core/bindings';
import type { MailerApi } from './api';
import type { MailerData } from './data';
import { TableRoutes } from './table-routes';

export interface NonprofitsRoutesProps {
  api: MailerApi;
  data: MailerData;
}

/**
 * The nonprofits registry: one function per route, so each holds only the table actions it calls.
 */
export class NonprofitsRoutes extends TableRoutes {
  constructor(scope: Construct, id: string, { api, data }: NonprofitsRoutesProps) {
    super(scope, id, { api, binding: TABLE.nonprofits, table: data.nonprofits });
    this.route('POST', '/nonprofits', 'CreateNonprofit', 'api/create-nonprofit.ts', ['dynamodb:PutItem']);
    this.route(
      'GET',
      '/nonprofits',
      'ListNonprofits',
      'api/list-nonprofits.ts',
      // The whole registry is scanned; a domain is queried on its index.
      ['dynamodb:Scan'],
      { names: [INDEX.nonprofitsByDomain], actions: ['dynamodb:Query'] },
    );
    this.route('GET', '/nonprofits/{email}', 'GetNonprofit', 'api/get-nonprofit.ts', ['dynamodb:GetItem']);
    this.route('PUT', '/nonprofits/{email}', 'UpdateNonprofit', 'api/update-nonprofit.ts', [
      'dynamodb:UpdateItem',
    ]);
    this.route('DELETE', '/nonprofits/{email}', 'DeleteNonprofit', 'api/delete-nonprofit.ts', [
      'dynamodb:DeleteItem',
    ]);
  }
}
