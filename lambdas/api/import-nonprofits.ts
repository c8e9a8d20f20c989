// POST /nonprofits/import: handler --> nonprofit repository (DynamoDB)

import { nonprofitsFromEnv } from '../core/adapters';
import { ValidationError } from '../core/errors';
import { apiHandler, bodyText, header, json, parseQuery } from '../core/http';
import {
  importNonprofits,
  importQuery,
  type NonprofitImportStore,
  readImportRows,
} from '../core/nonprofits/import';

export const makeImportNonprofits = ({ nonprofits }: { nonprofits: NonprofitImportStore }) =>
  apiHandler(async (event) => {
    const { on_conflict: onConflict = 'skip' } = parseQuery(event, importQuery);
    const body = bodyText(event, 'Request body is required: a JSON array of nonprofits, or text/csv');
    const rows = readImportRows(body, header(event, 'content-type'));
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
    return json(200, result);
  });

export const handler = makeImportNonprofits({ nonprofits: nonprofitsFromEnv() });
