import { randomInt } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { ApiKeyModel } from './api-model';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A value shaped like the ones API Gateway generates: 40 letters and digits. */
export function generateKeyValue(): string {
  return Array.from({ length: 40 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
}

/**
 * The value of each API key. A key with a `Value` in the template keeps it; otherwise API Gateway
 * would generate one, and so does this, once: values are kept in a file so a restart keeps them.
 */
export function loadKeyValues(keys: ApiKeyModel[], file: string): Map<string, string> {
  const stored: Record<string, string> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const values = new Map<string, string>();
  for (const key of keys) {
    const value = key.value ?? stored[key.id] ?? generateKeyValue();
    values.set(key.id, value);
    if (!key.value) stored[key.id] = value;
  }
  writeFileSync(file, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
  return values;
}
