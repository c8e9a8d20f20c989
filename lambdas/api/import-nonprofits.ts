// POST /nonprofits/import: handler --> nonprofit repository (DynamoDB)

import {
  addressKeysFromEnv,
  auditTrailFromEnv,
  nonprofitsFromEnv,
  suppressionsFromEnv,
} from '../core/adapters';
import type { AuditTrailWriter } from '../core/audit/audit';
import { ValidationError } from '../core/errors';
import { apiHandler, bodyText, callerActor, header, json, parseQuery } from '../core/http';
import {
  importedAddresses,
  importNonprofits,
  importQuery,
  type NonprofitImportStore,
  readImportRows,
} from '../core/nonprofits/import';
import type { SuppressionList } from '../core/suppressions/repository';

export interface ImportNonprofitsDependencies {
  /** The registry, without an audit trail: an import is recorded once, with its counts, not per row. */
  nonprofits: NonprofitImportStore;
  audit: AuditTrailWriter;
  /** Addresses erased before are suppressed again before their entries are made (see `rememberErased`). */
  erased: Pick<SuppressionList, 'rememberErased'>;
}

export const makeImportNonprofits = ({ nonprofits, audit, erased }: ImportNonprofitsDependencies) =>
  apiHandler(async (event) => {
    const { on_conflict: onConflict = 'skip' } = parseQuery(event, importQuery);
    const body = bodyText(event, 'Request body is required: a JSON array of nonprofits, or text/csv');
    const rows = readImportRows(body, header(event, 'content-type'));
    await erased.rememberErased(importedAddresses(rows));
    const result = await importNonprofits(nonprofits, rows, onConflict);
    // Nothing in it could be registered: the request as a whole is bad input, and nothing changed.
    if (result.invalid === rows.length) {
      throw new ValidationError(
        'No row of the import is valid',
        result.rows.flatMap((outcome) =>
          outcome.status === 'invalid'
            ? outcome.details.map(({ field, message }) => ({
                field: `rows[${outcome.row}].${field}`,
                message,
              }))
            : [],
        ),
      );
    }
    // Recorded after the rows' writes: an import cut short by a crash leaves rows written and no
    // record; the client's retry (an import is idempotent) is recorded with what it found.
    const { rows: _rows, ...counts } = result;
    await audit.append({
      action: 'nonprofits.imported',
      actor: callerActor(event),
      details: { ...counts, on_conflict: onConflict },
    });
    return json(200, result);
  });

const audit = auditTrailFromEnv();

export const handler = makeImportNonprofits({
  nonprofits: nonprofitsFromEnv(),
  audit,
  erased: suppressionsFromEnv(undefined, audit, addressKeysFromEnv()),
});
