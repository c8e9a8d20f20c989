import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

/** Only the user who runs the local runtime may list, read or write its state. */
const PRIVATE_DIR = 0o700;
const PRIVATE_FILE = 0o600;

/**
 * Makes the local runtime's state directory (`.local/`) private, and what the runtime keeps in it: it
 * holds addresses, API keys, secrets and queued messages, and a state directory left by an older
 * version (or made by hand) may be readable by every user of the machine. Symbolic links are left
 * as they are (what they point to is not the runtime's).
 */
export function preparePrivateStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
  const stat = lstatSync(dir);
  // A shared directory (sticky, like /tmp) named as the state directory is left as it is.
  if ((stat.mode & 0o1000) === 0 && (stat.mode & 0o777) !== PRIVATE_DIR) chmodSync(dir, PRIVATE_DIR);
  // Its files, and the folders the runtime keeps in it: nothing else (a state directory named `.`
  // must not make a checkout's node_modules or .git private).
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (lstatSync(path).isFile() || RUNTIME_FOLDERS.has(entry)) tighten(path);
  }
}

/** The folders the runtime makes in its state directory. */
const RUNTIME_FOLDERS = new Set(['dynamodb', 'cdk.out']);

function tighten(path: string): void {
  const stat = lstatSync(path);
  if (stat.isSymbolicLink()) return;
  if (stat.isDirectory()) {
    if ((stat.mode & 0o777) !== PRIVATE_DIR) chmodSync(path, PRIVATE_DIR);
    for (const entry of readdirSync(path)) tighten(join(path, entry));
  } else if ((stat.mode & 0o777 & ~PRIVATE_FILE) !== 0) chmodSync(path, PRIVATE_FILE);
}

/**
 * Runs `spawn` with the file-creation mask that makes what the child creates private (a child
 * inherits the mask at its start): DynamoDB Local's database files hold every address. Worker
 * threads cannot change the process's mask; there the private directory alone keeps others out.
 */
export function withPrivateFiles<T>(spawn: () => T): T {
  if (!isMainThread) return spawn();
  const previous = process.umask(0o077);
  try {
    return spawn();
  } finally {
    process.umask(previous);
  }
}
