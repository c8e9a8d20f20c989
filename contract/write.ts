import { mkdirSync, writeFileSync } from 'node:fs';
import { eventSchemaDocuments } from './events';
import { openApiDocument } from './openapi';

/** `npm run openapi`: writes the contract where it is checked in and served from. */
const file = new URL('../openapi.json', import.meta.url);
writeFileSync(file, `${JSON.stringify(openApiDocument(), null, 2)}\n`);
console.log(`Wrote ${file.pathname}`);

// The events' detail schemas, one file per detail-type.
const events = new URL('./events/', import.meta.url);
mkdirSync(events, { recursive: true });
for (const [name, schema] of eventSchemaDocuments()) {
  writeFileSync(new URL(name, events), `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`Wrote ${new URL(name, events).pathname}`);
}
