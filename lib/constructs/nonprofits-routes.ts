import { Construct } from 'constructs';
import { INDEX, TABLE } from '../../lambdas/core/bindings';
import type { MailerApi } from './api';
import type { MailerData } from './data';
import { type DynamoDbAction, ProjectFunction } from './project-function';

export interface NonprofitsRoutesProps {
  api: MailerApi;
  data: MailerData;
}

/**
 * The nonprofits registry: one function per route, so each holds only the table actions it calls.
 */
export class NonprofitsRoutes extends Construct {
  readonly functions: ProjectFunction[] = [];

  constructor(scope: Construct, id: string, { api, data }: NonprofitsRoutesProps) {
    super(scope, id);
    const route = (
      method: Parameters<MailerApi['addRoute']>[0],
      path: string,
      name: string,
      entry: string,
      actions: readonly DynamoDbAction[],
      indexes?: Parameters<ProjectFunction['bindTable']>[3],
    ) => {
      const fn = new ProjectFunction(this, name, { entry, description: `${method} ${path}` })
        .bindTable(TABLE.nonprofits, data.nonprofits, actions, indexes)
        .acknowledgeNoDeadLetterTarget('api');
      api.addRoute(method, path, fn);
      this.functions.push(fn);
    };

    route('POST', '/nonprofits', 'CreateNonprofit', 'api/create-nonprofit.ts', ['dynamodb:PutItem']);
    route(
      'GET',
      '/nonprofits',
      'ListNonprofits',
      'api/list-nonprofits.ts',
      // The whole registry is scanned; a domain is queried on its index.
      ['dynamodb:Scan'],
      { names: [INDEX.nonprofitsByDomain], actions: ['dynamodb:Query'] },
    );
    route('GET', '/nonprofits/{email}', 'GetNonprofit', 'api/get-nonprofit.ts', ['dynamodb:GetItem']);
    route('PUT', '/nonprofits/{email}', 'UpdateNonprofit', 'api/update-nonprofit.ts', [
      'dynamodb:UpdateItem',
    ]);
    route('DELETE', '/nonprofits/{email}', 'DeleteNonprofit', 'api/delete-nonprofit.ts', [
      'dynamodb:DeleteItem',
    ]);
  }
}
