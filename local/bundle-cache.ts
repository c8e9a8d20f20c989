import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
} from 'node:fs';
import { join } from 'node:path';

/** What the local runtime keeps between runs (bundles, syntheses), under the installed dependencies. */
export const LOCAL_CACHE = join('node_modules', '.cache', 'nonprofit-mailer');

/**
 * Where bundles outlive a synthesis: under `node_modules`, so it goes with the installed
 * dependencies, and so a bundle linked from here still finds the AWS SDK (left external) by Node's
 * usual walk up to the project's `node_modules`.
 */
export const DEFAULT_BUNDLE_CACHE = join(LOCAL_CACHE, 'bundles');

/** A bundle no synthesis has used for this long is removed from the cache. */
const UNUSED_FOR_MS = 3 * 24 * 3600 * 1000;

const isAssetFolder = (name: string) => name.startsWith('asset.') && !name.includes('-building');

/**
 * Bundles shared by every cloud assembly on this machine (each runtime's state folder has one, each
 * end-to-end test its own). Function assets are named by a hash of their inputs (see
 * `lib/bundle-fingerprint.ts`), and CDK skips esbuild for an asset whose folder already exists: so
 * linking the cached bundles into an output folder before synthesis is all it takes to reuse them,
 * and keeping the new ones after it is all it takes to fill the cache.
 */
export class BundleCache {
  constructor(private readonly dir: string) {}

  /** Before synthesis: links every cached bundle into the output folder, and drops links to bundles gone. */
  lendTo(outdir: string): void {
    mkdirSync(outdir, { recursive: true });
    for (const name of readdirSync(outdir).filter(isAssetFolder)) {
      const path = join(outdir, name);
      // A link whose bundle was pruned would make CDK think the bundle exists; it must be rebuilt.
      if (lstatSync(path).isSymbolicLink() && !existsSync(path)) unlinkSync(path);
    }
    if (!existsSync(this.dir)) return;
    for (const name of readdirSync(this.dir).filter(isAssetFolder)) {
      const link = join(outdir, name);
      if (!existsSync(link)) symlinkSync(join(this.dir, name), link, 'dir');
    }
  }

  /**
   * After synthesis: moves the bundles it built into the cache (a link takes their place), marks
   * the ones it used as fresh, and removes those unused for days. Another process may be keeping the
   * same bundle at the same moment: whichever rename lands first wins, and the other keeps its own copy.
   */
  keepFrom(outdir: string, used: readonly string[]): void {
    mkdirSync(this.dir, { recursive: true });
    const now = new Date();
    for (const name of used) {
      const path = join(outdir, name);
      if (!existsSync(path)) continue;
      const cached = join(this.dir, name);
      if (!lstatSync(path).isSymbolicLink()) {
        if (!existsSync(cached)) moveInto(path, cached);
        if (existsSync(cached) && existsSync(path)) rmSync(path, { recursive: true, force: true });
        if (existsSync(cached)) symlinkSync(cached, path, 'dir');
      }
    }
    this.touch(used);
    for (const name of readdirSync(this.dir)) {
      const path = join(this.dir, name);
      try {
        if (now.getTime() - statSync(path).mtimeMs > UNUSED_FOR_MS)
          rmSync(path, { recursive: true, force: true });
      } catch {
        // Another synthesis pruned it first.
      }
    }
  }

  /** Marks these bundles used now, so pruning keeps them. */
  touch(used: readonly string[]): void {
    const now = new Date();
    for (const name of used) {
      try {
        utimesSync(join(this.dir, name), now, now);
      } catch {
        // Not in the cache (built elsewhere, or pruned): nothing to keep.
      }
    }
  }
}

/**
 * Moves a bundle into the cache: renamed when both are on one file system, else copied under a
 * temporary name and renamed within the cache, so a reader never sees half a bundle.
 */
function moveInto(path: string, cached: string): void {
  try {
    renameSync(path, cached);
    return;
  } catch (error) {
    // Another process kept the same bundle first (the folder is not empty): ours stays where it is.
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') return;
  }
  const staging = `${cached}-building-${process.pid}`;
  cpSync(path, staging, { recursive: true });
  try {
    renameSync(staging, cached);
  } catch {
    rmSync(staging, { recursive: true, force: true });
  }
}
