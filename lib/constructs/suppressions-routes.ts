import { Construct } from 'constructs';
import { INDEX, TABLE } from '../../lambdas/core/bindings';
import type { MailerApi } from './api';
import type { MailerData } from './data';
import { type DynamoDbAction, ProjectFunction } from './project-function';

export interface SuppressionsRoutesProps {
  api: MailerApi;
  data: MailerData;
}

/** Operators' routes on the suppression list (API key): one function per route, each with only its table actions. */
export class SuppressionsRoutes extends Construct {
  readonly functions: ProjectFunction[] = [];

  constructor(scope: Construct, id: string, { api, data }: SuppressionsRoutesProps) {
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
        .bindTable(TABLE.suppressions, data.suppressions, actions, indexes)
        .acknowledgeNoDeadLetterTarget('api');
      api.addRoute(method, path, fn);
      this.functions.push(fn);
    };

    route('GET', '/suppressions', 'ListSuppressions', 'api/list-suppressions.ts', ['dynamodb:Scan'], {
      names: [INDEX.suppressionsByReason],
      actions: ['dynamodb:Query'],
    });
    route('GET', '/suppressions/{email}', 'GetSuppression', 'api/get-suppression.ts', ['dynamodb:GetItem']);
    // A manual add that finds the address suppressed reads the record it kept.
    route('PUT', '/suppressions/{email}', 'PutSuppression', 'api/put-suppression.ts', [
      'dynamodb:PutItem',
      'dynamodb:GetItem',
    ]);
    // A refused lift reads the record to say why (not suppressed, or a complaint).
    route('DELETE', '/suppressions/{email}', 'DeleteSuppression', 'api/delete-suppression.ts', [
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
    ]);
  }
}
