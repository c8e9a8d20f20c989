import { expect } from 'vitest';
import type { apiClient } from './runtime-process';

/** The most rows `POST /nonprofits/import` takes in one request. */
const IMPORT_ROWS = 1_000;

/**
 * Registers nonprofits through the API as a user would in bulk: `POST /nonprofits/import`, a
 * thousand rows a request (two requests for 2,000 instead of 2,000 single creates). Each must be
 * new. The runtime's context must allow an import per chunk without throttling
 * (`importRequestsPerSecond`, `importBurstLimit`).
 */
export async function registerNonprofits(
  api: ReturnType<typeof apiClient>,
  emails: readonly string[],
  details: (n: number) => { name: string; address: string } = (n) => ({
    name: `Member ${n}`,
    address: `${n} Main St`,
  }),
): Promise<void> {
  for (let start = 0; start < emails.length; start += IMPORT_ROWS) {
    const rows = emails
      .slice(start, start + IMPORT_ROWS)
      .map((email, i) => ({ email, ...details(start + i) }));
    const { status, body } = await api('POST', '/nonprofits/import', rows);
    expect(status).toBe(200);
    expect(body).toMatchObject({ created: rows.length, invalid: 0 });
  }
}

/** Context that lets `registerNonprofits` import without waiting on the import throttle. */
export const UNTHROTTLED_IMPORTS = { importRequestsPerSecond: 20, importBurstLimit: 20 };
