import { CsvError } from 'csv-parse';
import { parse as parseCsv } from 'csv-parse/sync';
import { mapConcurrently } from '../concurrency';
import { ConflictError, type FieldProblem, ValidationError } from '../errors';
import { toFieldProblems } from '../http';
import * as z from '../zod';
import { type NewNonprofit, newNonprofit } from './nonprofit';
import type { NonprofitRepository } from './repository';

/** Rows one import takes at most. */
export const MAX_IMPORT_ROWS = 1_000;
/** The CSV columns, in any order, and no others. */
const CSV_COLUMNS = ['email', 'name', 'address'] as const;
/** Rows written at once: each is one small conditional write. */
const CONCURRENT_WRITES = 10;

export const importQuery = z.strictObject({
  /** `skip` (the default): a registered address is left as it is. `update`: its name and address are replaced. */
  on_conflict: z.enum(['skip', 'update'], { message: 'Must be skip or update' }).optional(),
});

/** What became of one row: `row` counts data rows from 1 (a CSV header is not a row). */
export type ImportOutcome =
  | { row: number; email: string; status: 'created' | 'exists' | 'updated' }
  | { row: number; email: string | null; status: 'invalid'; details: FieldProblem[]; details_total: number };

/** Problems listed per invalid row: the answer stays far below Lambda's 6 MB whatever a row holds. */
const MAX_ROW_DETAILS = 5;

export interface ImportResult {
  created: number;
  updated: number;
  exists: number;
  invalid: number;
  rows: ImportOutcome[];
}

/** What an import writes with: a create that refuses an existing address, and an update that only writes a change. */
export interface NonprofitImportStore extends Pick<NonprofitRepository, 'create'> {
  /** Replaces the name and address of a registered nonprofit if they differ; false when they were the same already. */
  updateIfChanged(input: NewNonprofit): Promise<boolean>;
}

/**
 * The rows of an import body: a JSON array of objects, or CSV (RFC 4180: quoted fields may hold
 * commas, quotes doubled, line breaks; UTF-8 with or without a byte order mark) with the header
 * `email,name,address`. A body that cannot be read as a whole is a 400 and nothing is written; in CSV
 * that includes a line with more or fewer fields than the header (the file is malformed, not a row).
 */
export function readImportRows(body: string, contentType: string | undefined): unknown[] {
  // Bytes that are not UTF-8 decode to U+FFFD: stored, they would garble names for good.
  if (body.includes('\uFFFD')) {
    throw new ValidationError('Request body is not UTF-8 text (save the file as UTF-8)');
  }
  const type = (contentType ?? 'application/json').split(';')[0]?.trim().toLowerCase();
  const rows = type === 'text/csv' ? csvRows(body) : jsonRows(body);
  if (rows.length === 0) throw new ValidationError('The import holds no rows');
  if (rows.length > MAX_IMPORT_ROWS) {
    throw new ValidationError(
      `An import holds at most ${MAX_IMPORT_ROWS} rows; this one holds ${rows.length}`,
    );
  }
  return rows;
}

function jsonRows(body: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new ValidationError('Request body is not valid JSON (or send text/csv with its content type)');
  }
  if (!Array.isArray(parsed)) throw new ValidationError('Request body must be a JSON array of nonprofits');
  return parsed;
}

function csvRows(body: string): unknown[] {
  let records: string[][];
  try {
    records = parseCsv(body, { bom: true, skip_empty_lines: true }) as string[][];
  } catch (error) {
    if (error instanceof CsvError)
      throw new ValidationError(`Request body is not valid CSV: ${error.message}`);
    throw error;
  }
  const [header, ...data] = records;
  const columns = (header ?? []).map((name) => name.trim().toLowerCase());
  if (columns.length !== CSV_COLUMNS.length || !CSV_COLUMNS.every((name) => columns.includes(name))) {
    throw new ValidationError('The CSV header must name the columns email, name and address', [
      { field: 'header', message: `Found: ${(header ?? []).join(',').slice(0, 200)}` },
    ]);
  }
  return data.map((record) => Object.fromEntries(columns.map((name, index) => [name, record[index]])));
}

/**
 * Registers each valid row as `POST /nonprofits` would (the same checks, the same lower-cased
 * address), and reports every row. An address already registered is `exists`, or with
 * `update` has its name and address replaced (`updated`, or `exists` when they were the same), so
 * an import repeated changes nothing. An address twice in one import is invalid the second time.
 */
/** The valid addresses of an import's rows, as they would be registered (lower case, trimmed). */
export const importedAddresses = (rows: readonly unknown[]): string[] =>
  rows.flatMap((row) => {
    const parsed = newNonprofit.safeParse(row);
    return parsed.success ? [parsed.data.email] : [];
  });

export async function importNonprofits(
  store: NonprofitImportStore,
  rows: readonly unknown[],
  onConflict: 'skip' | 'update',
): Promise<ImportResult> {
  const seen = new Map<string, number>();
  const checked = rows.map((row, index): ImportOutcome | { row: number; input: NewNonprofit } => {
    const number = index + 1;
    const parsed = newNonprofit.safeParse(row);
    if (!parsed.success) {
      const email =
        typeof (row as { email?: unknown } | null)?.email === 'string'
          ? (row as { email: string }).email
          : null;
      return invalid(number, email?.slice(0, 254) ?? null, problems(parsed.error));
    }
    const first = seen.get(parsed.data.email);
    if (first !== undefined) {
      return invalid(number, parsed.data.email, [
        { field: 'email', message: `Duplicate of row ${first} (${parsed.data.email})` },
      ]);
    }
    seen.set(parsed.data.email, number);
    return { row: number, input: parsed.data };
  });
  const outcomes = await mapConcurrently(
    checked,
    CONCURRENT_WRITES,
    async (entry): Promise<ImportOutcome> => {
      if (!('input' in entry)) return entry;
      const { row, input } = entry;
      try {
        await store.create(input);
        return { row, email: input.email, status: 'created' };
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        if (onConflict === 'skip') return { row, email: input.email, status: 'exists' };
        const changed = await store.updateIfChanged(input);
        return { row, email: input.email, status: changed ? 'updated' : 'exists' };
      }
    },
  );
  const count = (status: ImportOutcome['status']) =>
    outcomes.filter((outcome) => outcome.status === status).length;
  return {
    created: count('created'),
    updated: count('updated'),
    exists: count('exists'),
    invalid: count('invalid'),
    rows: outcomes,
  };
}

const invalid = (row: number, email: string | null, details: FieldProblem[]): ImportOutcome => ({
  row,
  email,
  status: 'invalid',
  details: details.slice(0, MAX_ROW_DETAILS),
  details_total: details.length,
});

/** A row's problems, named as a single create names them. */
const problems = (error: z.ZodError): FieldProblem[] =>
  toFieldProblems(error.issues, '').map((problem) =>
    problem.field === '(body)' ? { ...problem, field: '(row)' } : problem,
  );
