import type { Duration } from 'aws-cdk-lib';
import type { ThrottleSettings } from 'aws-cdk-lib/aws-apigateway';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import type { TableBinding } from '../../lambdas/core/bindings';
import type { MailerApi } from './api';
import { type DynamoDbAction, ProjectFunction } from './project-function';

/**
 * Routes over one table: one function per route, each bound to the table with only the actions
 * (and index actions) its handler calls, so a bug in one route can never write through another's grant.
 */
export abstract class TableRoutes extends Construct {
  readonly functions: ProjectFunction[] = [];

  constructor(
    scope: Construct,
    id: string,
    private readonly target: { api: MailerApi; binding: TableBinding; table: Table },
  ) {
    super(scope, id);
  }

  protected route(
    method: Parameters<MailerApi['addRoute']>[0],
    path: string,
    name: string,
    entry: string,
    actions: readonly DynamoDbAction[],
    indexes?: Parameters<ProjectFunction['bindTable']>[3],
    /** For a route that does more than one item's work: its time, memory and a per-key throttle. */
    heavy?: { timeout: Duration; memorySize: number; throttle: ThrottleSettings },
  ): ProjectFunction {
    const fn = new ProjectFunction(this, name, {
      entry,
      description: `${method} ${path}`,
      ...(heavy ? { timeout: heavy.timeout, memorySize: heavy.memorySize } : {}),
    })
      .bindTable(this.target.binding, this.target.table, actions, indexes)
      .acknowledgeNoDeadLetterTarget('api');
    this.target.api.addRoute(method, path, fn, heavy ? { throttle: heavy.throttle } : {});
    this.functions.push(fn);
    return fn;
  }
}
