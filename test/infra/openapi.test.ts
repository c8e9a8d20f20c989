import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { eventSchemaDocuments } from '../../contract/events';
import { OPERATIONS, openApiDocument } from '../../contract/openapi';
import { ROUTE_SCOPES } from '../../lambdas/core/auth/scopes';
import { readApiModel } from '../../local/api-model';
import { IntrinsicResolver } from '../../local/template';
import { synthesizeForTests } from '../support/synth';

const checkedIn = JSON.parse(readFileSync(new URL('../../openapi.json', import.meta.url), 'utf8')) as {
  paths: Record<string, Record<string, { security?: unknown[] }>>;
};

describe('the published contract (openapi.json)', () => {
  it('is what `npm run openapi` writes from the zod schemas today', () => {
    // Stale: run `npm run openapi` and commit openapi.json.
    expect(checkedIn).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
  });

  it("has the events' detail schemas `npm run openapi` writes from the zod schemas today, one file per detail-type", () => {
    const directory = new URL('../../contract/events/', import.meta.url);
    const written = eventSchemaDocuments();
    // Stale or extra: run `npm run openapi` and commit contract/events/.
    expect(readdirSync(directory).sort()).toEqual([...written.keys()].sort());
    for (const [file, schema] of written)
      expect(JSON.parse(readFileSync(new URL(file, directory), 'utf8')), file).toEqual(
        JSON.parse(JSON.stringify(schema)),
      );
  });

  it("has exactly the synthesized template's methods as its operations, each with the same key requirement and scope", () => {
    const { template } = synthesizeForTests();
    const routes = readApiModel(template, new IntrinsicResolver(template)).routes;
    const declared = routes.map((route) => `${route.method} ${route.resourcePath}`).sort();
    const documented = Object.entries(checkedIn.paths)
      .flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(declared);
    expect([...OPERATIONS].sort()).toEqual(declared);
    for (const route of routes) {
      const operation = checkedIn.paths[route.resourcePath]?.[route.method.toLowerCase()];
      // A public route declares none; a keyed one the API key scheme with the scope the template's
      // authorizer holds it to.
      const scope = ROUTE_SCOPES[`${route.method} ${route.resourcePath}`];
      expect(operation?.security, `${route.method} ${route.resourcePath}`).toEqual(
        route.apiKeyRequired ? [{ apiKey: [scope] }] : [],
      );
      expect(route.authorizerId !== undefined).toBe(route.apiKeyRequired);
    }
  });
});
