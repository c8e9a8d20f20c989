import { readFileSync } from 'node:fs';

/** The project's version (package.json): the stack gives it to /health, and the contract states it. */
export const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
