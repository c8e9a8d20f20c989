import fc from 'fast-check';
import type { Route } from '../local/api-model';
import { type Fixtures, type FuzzRequest, requestsFor } from './requests';

/** What the store holds that a refused request must not change. */
export type Snapshot = () => Promise<string>;

export interface FuzzOptions {
  /** The API's base URL, stage included. */
  url: string;
  /**
   * The keys requests are sent with, one drawn per request, so keys of different scopes meet every
   * route; the first (the operator's, which every route lets in) three times as often as each other.
   */
  apiKeys: readonly string[];
  routes: readonly Route[];
  fixtures: Fixtures;
  numRuns: number;
  seed: number;
  /** Read before and after each refused write: equal, or the request changed stored data. */
  snapshot: Snapshot;
  /** Called after a delete succeeded: puts back what the fixtures name (it may have been deleted). */
  restoreFixtures?: () => Promise<void>;
}

export interface FuzzReport {
  requests: number;
  /** Answers by route and status. */
  byRoute: Map<string, Map<number, number>>;
  /** Set when a property failed: fast-check's report, with the seed and path that replay it. */
  failure?: string;
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

async function send({ url }: FuzzOptions, apiKey: string, request: FuzzRequest) {
  const response = await fetch(`${url}${request.path}`, {
    method: request.method,
    headers: { 'x-api-key': apiKey, ...request.headers },
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  return { status: response.status, text: await response.text() };
}

/** Why an answer breaks the promise (never a 5xx; every 4xx is JSON with a message), or undefined. */
function brokenPromise(status: number, text: string): string | undefined {
  if (status >= 500) return `answered ${status}: ${text.slice(0, 300)}`;
  if (status >= 400) {
    try {
      const body = JSON.parse(text) as { message?: unknown };
      if (typeof body.message !== 'string' || body.message === '')
        return `a ${status} without a message: ${text.slice(0, 300)}`;
    } catch {
      return `a ${status} that is not JSON: ${text.slice(0, 300)}`;
    }
  }
  return undefined;
}

/**
 * Sends `numRuns` requests drawn from every route of the template, one at a time, and checks each
 * answer: never a 5xx, every 4xx JSON with a `message`, and a refused write changes nothing stored.
 * A failure is shrunk to a small request and reported with the seed and path that replay it.
 */
export async function fuzz(options: FuzzOptions): Promise<FuzzReport> {
  const report: FuzzReport = { requests: 0, byRoute: new Map() };
  const requests = fc.oneof(...options.routes.map((route) => requestsFor(route, options.fixtures)));
  const property = fc.asyncProperty(
    requests,
    fc.constantFrom(...options.apiKeys),
    async (request, apiKey) => {
      const write = WRITES.has(request.method);
      const before = write ? await options.snapshot() : '';
      const { status, text } = await send(options, apiKey, request);
      report.requests++;
      const counts = report.byRoute.get(request.route) ?? new Map<number, number>();
      counts.set(status, (counts.get(status) ?? 0) + 1);
      report.byRoute.set(request.route, counts);
      const broken = brokenPromise(status, text);
      if (broken) throw new Error(`${request.method} ${request.path}: ${broken}`);
      if (request.method === 'DELETE' && status < 300) await options.restoreFixtures?.();
      if (write && status >= 400 && (await options.snapshot()) !== before) {
        throw new Error(`${request.method} ${request.path}: answered ${status} but changed stored data`);
      }
    },
  );
  const result = await fc.check(property, {
    numRuns: options.numRuns,
    seed: options.seed,
    endOnFailure: false,
  });
  // The report leads with the seed and path that replay it; a shrunk counterexample can still be long.
  if (result.failed) report.failure = (fc.defaultReportMessage(result) ?? 'failed').slice(0, 4_000);
  return report;
}

/** The counts as a table: one line per route, statuses with their counts. */
export function describeCounts(report: FuzzReport): string {
  return [...report.byRoute.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([route, counts]) => {
      const statuses = [...counts.entries()].sort(([a], [b]) => a - b).map(([status, n]) => `${status}×${n}`);
      return `${route.padEnd(34)} ${statuses.join('  ')}`;
    })
    .join('\n');
}
