import { Construct } from 'constructs';
import type { MailerApi } from './api';
import { ProjectFunction } from './project-function';

/**
 * `GET /openapi.json`: the API's OpenAPI document, bundled into a function of its own. Public, as
 * a contract is read before a key is had; it holds no secret and touches no resource.
 */
export class PublishedContract extends Construct {
  constructor(scope: Construct, id: string, { api }: { api: MailerApi }) {
    super(scope, id);
    const serve = new ProjectFunction(this, 'GetOpenApi', {
      entry: 'api/openapi.ts',
      description: 'GET /openapi.json',
    }).acknowledgeNoDeadLetterTarget('api');
    api.addRoute('GET', '/openapi.json', serve, {
      public: 'The published API contract: clients read it before they hold a key, and it holds no secret.',
    });
  }
}
