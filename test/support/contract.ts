import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

/**
 * Holds an answer of the API to the published contract (openapi.json): its status must be one the
 * operation documents, its headers those it requires, and its JSON body must match the schema.
 * The end-to-end tests' client calls this on every answer, so the contract cannot drift from
 * what the deployed wiring answers.
 */

interface Operation {
  responses: Record<
    string,
    {
      headers?: Record<string, { required?: boolean }>;
      content?: Record<string, { schema?: unknown }>;
    }
  >;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
}

const DOCUMENT_ID = 'openapi.json';
const document = JSON.parse(readFileSync(new URL('../../openapi.json', import.meta.url), 'utf8')) as Document;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(document as object, DOCUMENT_ID);

/** Path templates, static ones first: `/nonprofits/import` is not `/nonprofits/{email}`. */
const templates = Object.keys(document.paths)
  .map((template) => ({
    template,
    params: (template.match(/\{/g) ?? []).length,
    pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
  }))
  .sort((a, b) => a.params - b.params);

/** The schema at a response, its local references pointed into the whole document. */
function rebased(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(rebased);
  if (schema === null || typeof schema !== 'object') return schema;
  return Object.fromEntries(
    Object.entries(schema).map(([key, value]) => [
      key,
      key === '$ref' && typeof value === 'string' && value.startsWith('#')
        ? `${DOCUMENT_ID}${value}`
        : rebased(value),
    ]),
  );
}

const validators = new Map<string, ValidateFunction>();

export function checkAgainstContract(answer: {
  method: string;
  /** The path after the stage (`/jobs/…`), query included or not. */
  path: string;
  status: number;
  headers: Headers;
  body: unknown;
  /**
   * Whether a server error may be the answer: only a test that takes a part away (DynamoDB Local
   * stopped) expects one. Elsewhere a 5xx is a defect, though the contract documents it as possible.
   */
  serverErrorsExpected?: boolean;
}): void {
  const path = answer.path.split('?')[0] ?? '';
  const where = `${answer.method} ${path} → ${answer.status}`;
  const found = templates.find(({ pattern }) => pattern.test(path));
  const operation = found && document.paths[found.template]?.[answer.method.toLowerCase()];
  if (!found || !operation) {
    // API Gateway's answer to a route it does not have (`Missing Authentication Token`), which the
    // README documents; anything else off the contract's routes is not the API's.
    if (answer.status === 403) return;
    throw new Error(`${where}: no such operation in openapi.json`);
  }
  const code = String(answer.status);
  const key = [code, `${code[0]}XX`, 'default'].find((candidate) => operation.responses[candidate]);
  const response = key && operation.responses[key];
  if (!key || !response) throw new Error(`${where}: openapi.json documents no such answer`);
  if (key === '5XX' && !answer.serverErrorsExpected)
    throw new Error(`${where}: a server error: ${JSON.stringify(answer.body).slice(0, 500)}`);
  const mediaTypes = Object.keys(response.content ?? {});
  const contentType = answer.headers.get('content-type') ?? '';
  if (
    answer.body !== undefined &&
    mediaTypes.length > 0 &&
    !mediaTypes.some((type) => contentType.startsWith(type))
  )
    throw new Error(`${where}: content-type ${contentType || '(none)'}, not ${mediaTypes.join(' or ')}`);
  for (const [name, header] of Object.entries(response.headers ?? {})) {
    if (header.required && !answer.headers.has(name)) throw new Error(`${where}: no ${name} header`);
  }
  const schema = response.content?.['application/json']?.schema;
  if (schema === undefined) return;
  const id = `${answer.method} ${found.template} ${key}`;
  let validate = validators.get(id);
  if (!validate) {
    validate = ajv.compile(rebased(schema) as object);
    validators.set(id, validate);
  }
  if (!validate(answer.body)) {
    throw new Error(
      `${where}: the body does not match openapi.json: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(answer.body).slice(0, 500)}`,
    );
  }
}
