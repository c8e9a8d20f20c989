import { writeFileSync } from 'node:fs';
import { openApiDocument } from './openapi';

/** `npm run openapi`: writes the contract where it is checked in and served from. */
const file = new URL('../openapi.json', import.meta.url);
writeFileSync(file, `${JSON.stringify(openApiDocument(), null, 2)}\n`);
console.log(`Wrote ${file.pathname}`);
