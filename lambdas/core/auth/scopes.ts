/**
 * What an API key may do: each key holds scopes, each route needs one. The table below is the one
 * place that says which; the stack refuses to synthesize a keyed route it does not list, and the
 * authorizer allows a key exactly the routes its scopes cover.
 */
export const SCOPES = [
  /** Send email jobs and follow, cancel and retry the key's own; read its usage. */
  'send',
  /** Read the registry of nonprofits. */
  'registry:read',
  /** Create, update, delete and import nonprofits. */
  'registry:write',
  /** Read the suppression list, with the job and key behind each entry. */
  'suppressions:read',
  /** Suppress an address, and lift a suppression (a complaint's, with `force`). */
  'suppressions:write',
  /** Everything above, the controls of the sender itself, the audit trail, a person's data requests and the health details. */
  'operator',
] as const;
export type Scope = (typeof SCOPES)[number];

export const isScope = (value: string): value is Scope => (SCOPES as readonly string[]).includes(value);

/** The scope each keyed route needs, by `METHOD /resource/path` as API Gateway names the route. */
export const ROUTE_SCOPES: Readonly<Record<string, Scope>> = {
  'POST /send-email': 'send',
  'POST /send-email/preview': 'send',
  'GET /jobs': 'send',
  'GET /jobs/{job_id}': 'send',
  'GET /jobs/{job_id}/status': 'send',
  'GET /jobs/{job_id}/emails': 'send',
  'POST /jobs/{job_id}/cancel': 'send',
  'POST /jobs/{job_id}/retry': 'send',
  'GET /usage': 'send',
  'GET /nonprofits': 'registry:read',
  'GET /nonprofits/{email}': 'registry:read',
  'POST /nonprofits': 'registry:write',
  'POST /nonprofits/import': 'registry:write',
  'PUT /nonprofits/{email}': 'registry:write',
  'DELETE /nonprofits/{email}': 'registry:write',
  'GET /suppressions': 'suppressions:read',
  'GET /suppressions/{email}': 'suppressions:read',
  'PUT /suppressions/{email}': 'suppressions:write',
  'DELETE /suppressions/{email}': 'suppressions:write',
  'GET /sending': 'operator',
  'POST /sending/resume': 'operator',
  'GET /audit': 'operator',
  'POST /people/{email}/export': 'operator',
  'POST /people/{email}/erasure': 'operator',
  'GET /people/requests/{request_id}': 'operator',
  'GET /health/details': 'operator',
};

export const routeName = (method: string, resourcePath: string) => `${method} ${resourcePath}`;

/** The scope a keyed route needs; throws for a route the table does not list (a synthesis error). */
export function scopeOfRoute(method: string, resourcePath: string): Scope {
  const scope = ROUTE_SCOPES[routeName(method, resourcePath)];
  if (!scope)
    throw new Error(
      `${routeName(method, resourcePath)} needs an API key but no scope: add it to ROUTE_SCOPES (lambdas/core/auth/scopes.ts)`,
    );
  return scope;
}

/** Whether keys holding `held` may use what `needed` covers (`operator` covers every scope). */
export const covers = (held: readonly Scope[], needed: Scope): boolean =>
  held.includes(needed) || held.includes('operator');

/** A key as the stack declares it: its API Gateway id, a name people know it by, and its scopes. */
export interface DeclaredKey {
  id: string;
  name: string;
  scopes: Scope[];
}
