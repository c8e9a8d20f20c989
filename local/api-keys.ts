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

/** The scopes a key's description names (`API key <name> (scopes: a, b)`, as the stack writes it). */
export function describedScopes(description: string | undefined): string[] {
  return /\(scopes: ([^)]*)\)/.exec(description ?? '')?.[1]?.split(', ') ?? [];
}

/** The keys with those that may do everything (`operator`) first: the one to set things up with. */
export function operatorFirst<K extends { description?: string }>(keys: readonly K[]): K[] {
  const isOperator = (key: K) => describedScopes(key.description).includes('operator');
  return [...keys].sort((a, b) => Number(isOperator(b)) - Number(isOperator(a)));
}
