import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLES_BY_INPUTS_CONTEXT, bundleFingerprint, fingerprintOf } from '../lib/bundle-fingerprint';
import type { MailerConfig } from '../lib/config';
import { STACK_NAME } from '../lib/stack-name';
import { BundleCache, DEFAULT_BUNDLE_CACHE, LOCAL_CACHE } from './bundle-cache';
import { withEsbuildCalledDirectly } from './esbuild-direct';
import type { CfnTemplate } from './template';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface SynthesizedStack {
  template: CfnTemplate;
  /** The cloud assembly folder: each function's `aws:asset:path` is relative to it. */
  outdir: string;
  /**
   * The context as the app read it. The runtime takes from the template all it serves; only what
   * the context says of the AWS account itself (`sesSandbox`) shapes the emulated account.
   */
  config: MailerConfig;
}

/**
 * The sender of the emails when running locally, where no SES identity has to be verified: the
 * stack requires a `fromAddress` with the `ses` transport. `.localhost` names can never be delivered.
 */
export const LOCAL_FROM_ADDRESS = 'mailer@nonprofit-mailer.localhost';

/** Who the local runtime's footers name: the stack requires a postal address with the `ses` transport. */
export const LOCAL_SENDER = {
  senderName: 'Nonprofit Mailer (local)',
  senderPostalAddress: '1 Example Street, Springfield',
} as const;

/** What local synthesis puts under cdk.json's context: either overrides it. */
/** Locally, two keys: one that may do everything, and one that may only send (as a volunteer's script would hold). */
export const LOCAL_API_KEYS = [
  { name: 'operator', scopes: ['operator'] },
  { name: 'sender', scopes: ['send'] },
];
export const LOCAL_CONTEXT = { fromAddress: LOCAL_FROM_ADDRESS, ...LOCAL_SENDER, apiKeys: LOCAL_API_KEYS };

/**
 * The local sender's domain as the stack's `senderDomain`, so the local template has the SES
 * identity a deployment sets up (the local SES reports it verified): only while the sender is the
 * local one and no domain is given, as a `fromAddress` of another domain would contradict it.
 */
function localSenderDomain(projectContext: Record<string, unknown>): Record<string, unknown> {
  const given = {
    ...projectContext,
    ...(JSON.parse(process.env.CDK_CONTEXT_JSON ?? '{}') as Record<string, unknown>),
  };
  const local = (given.fromAddress ?? LOCAL_FROM_ADDRESS) === LOCAL_FROM_ADDRESS;
  return local && given.senderDomain === undefined
    ? { senderDomain: LOCAL_FROM_ADDRESS.slice(LOCAL_FROM_ADDRESS.indexOf('@') + 1) }
    : {};
}

/** Beside the assembly: what it was synthesized from, and the configuration the app read. */
const MEMO_FILE = 'local-synthesis.json';

/**
 * Syntheses shared by every state folder on this machine, a file per synthesis key (the template
 * and the configuration): a runtime started on a new folder (each end-to-end test's, a developer's
 * second checkout of the same code) then loads neither the CDK nor cdk-nag, seconds of CPU each time.
 */
export const DEFAULT_SYNTHESIS_CACHE = join(LOCAL_CACHE, 'syntheses');
const SHARED_SYNTHESIS_KEPT_MS = 3 * 24 * 3600 * 1000;

interface SynthesisMemo {
  key: string;
  config: MailerConfig;
}

/**
 * Synthesizes the CDK app in-process, as `cdk synth` would: cdk.json's context first, then
 * `CDK_CONTEXT_JSON` over it (the variable the CDK CLI itself uses to hand context to an app), and
 * asset metadata on, so each function's bundled asset can be found in the output folder. Local
 * defaults (the sender) sit under both, so either overrides them.
 *
 * An output folder already holding the synthesis of the same inputs (the stack's code, the
 * handlers' sources, the lockfile, the context) is used as it is: a restart of an unchanged
 * checkout loads neither the CDK nor esbuild. Bundles come from the shared cache when their
 * inputs match (see `local/bundle-cache.ts`).
 */
export async function synthesizeStack(
  outdir: string,
  bundles: BundleCache = new BundleCache(join(PROJECT_ROOT, DEFAULT_BUNDLE_CACHE)),
  syntheses: string = join(PROJECT_ROOT, DEFAULT_SYNTHESIS_CACHE),
): Promise<SynthesizedStack> {
  const cdkJson = JSON.parse(readFileSync(`${PROJECT_ROOT}cdk.json`, 'utf8')) as {
    context?: Record<string, unknown>;
  };
  const key = synthesisKey(cdkJson.context ?? {});
  const memo = readMemo(outdir, key) ?? sharedSynthesis(syntheses, key, outdir, bundles);
  if (memo) {
    // Marked as used, so a cache shared with other checkouts keeps them.
    bundles.touch(assetFolders(memo.template));
    return { ...memo, outdir };
  }

  // Gone before synthesis starts: a synthesis that fails half-way (cdk-nag throws after the
  // template is written) must not leave the old memo beside the new template.
  rmSync(join(outdir, MEMO_FILE), { force: true });
  bundles.lendTo(outdir);
  // Loaded only when needed: the CDK and cdk-nag take seconds to load.
  const { createApp } = await import('../lib/app');
  const { readConfig } = await import('../lib/config');
  // Functions are bundled as their constructs are made, so the whole app is built under it.
  const { app, assembly } = withEsbuildCalledDirectly(PROJECT_ROOT, join(PROJECT_ROOT, LOCAL_CACHE), () => {
    const { app } = createApp({
      outdir,
      context: { ...LOCAL_CONTEXT, ...localSenderDomain(cdkJson.context ?? {}), ...cdkJson.context },
      postCliContext: { 'aws:cdk:enable-asset-metadata': true, [BUNDLES_BY_INPUTS_CONTEXT]: true },
    });
    return { app, assembly: app.synth() };
  });
  const template = assembly.getStackByName(STACK_NAME).template as CfnTemplate;
  bundles.keepFrom(assembly.directory, assetFolders(template));
  const config = readConfig(app.node);
  // Written whole, then renamed into place: a reader never sees half a memo.
  writeWhole(join(assembly.directory, MEMO_FILE), JSON.stringify({ key, config } satisfies SynthesisMemo));
  try {
    mkdirSync(syntheses, { recursive: true });
    writeWhole(
      join(syntheses, `${key}.json`),
      JSON.stringify({ key, config, template } satisfies SharedSynthesis),
    );
    // Each change of the code or context makes a new one: those unused for days go.
    for (const name of readdirSync(syntheses)) {
      const file = join(syntheses, name);
      if (Date.now() - statSync(file).mtimeMs > SHARED_SYNTHESIS_KEPT_MS) rmSync(file, { force: true });
    }
  } catch {
    // Only a saving: the next new folder synthesizes again.
  }
  return { template, outdir: assembly.directory, config };
}

/** Written beside, then renamed into place: a reader (another runtime starting) never sees half a file. */
function writeWhole(file: string, content: string): void {
  writeFileSync(`${file}.${process.pid}`, content);
  renameSync(`${file}.${process.pid}`, file);
}

interface SharedSynthesis extends SynthesisMemo {
  template: CfnTemplate;
}

/**
 * The synthesis of the same inputs made for another folder, set up in this one (its template, its
 * memo, links to its bundles), when the shared cache holds it and every bundle it names is cached.
 */
function sharedSynthesis(
  syntheses: string,
  key: string,
  outdir: string,
  bundles: BundleCache,
): Omit<SynthesizedStack, 'outdir'> | undefined {
  try {
    const file = join(syntheses, `${key}.json`);
    const shared = JSON.parse(readFileSync(file, 'utf8')) as SharedSynthesis;
    if (shared.key !== key || !shared.template?.Resources) return undefined;
    const now = new Date();
    utimesSync(file, now, now);
    bundles.lendTo(outdir);
    if (!assetFolders(shared.template).every((folder) => existsSync(join(outdir, folder)))) return undefined;
    writeWhole(join(outdir, `${STACK_NAME}.template.json`), JSON.stringify(shared.template, undefined, 1));
    writeWhole(
      join(outdir, MEMO_FILE),
      JSON.stringify({ key, config: shared.config } satisfies SynthesisMemo),
    );
    return { template: shared.template, config: shared.config };
  } catch {
    // Gone (pruned by another process a moment ago) or unreadable: synthesize.
    return undefined;
  }
}

/**
 * What a synthesis is made from: the stack's code, the bundles' inputs (handlers, lockfile,
 * esbuild), the project's context and the caller's `CDK_CONTEXT_JSON`.
 */
function synthesisKey(projectContext: Record<string, unknown>): string {
  return (
    createHash('sha256')
      // This file too: how it synthesizes (the context it adds) shapes the template a key names.
      .update(fingerprintOf(['lib', 'bin/app.ts', 'package.json', 'local/synth.ts']))
      .update(bundleFingerprint())
      .update(JSON.stringify({ LOCAL_CONTEXT, projectContext, env: process.env.CDK_CONTEXT_JSON ?? '' }))
      .digest('hex')
  );
}

/** The synthesis already in the folder, if it was made from the same inputs and its bundles are all there. */
function readMemo(outdir: string, key: string): Omit<SynthesizedStack, 'outdir'> | undefined {
  const memoFile = join(outdir, MEMO_FILE);
  const templateFile = join(outdir, `${STACK_NAME}.template.json`);
  if (!existsSync(memoFile) || !existsSync(templateFile)) return undefined;
  try {
    const memo = JSON.parse(readFileSync(memoFile, 'utf8')) as SynthesisMemo;
    if (memo.key !== key) return undefined;
    const template = JSON.parse(readFileSync(templateFile, 'utf8')) as CfnTemplate;
    // A bundle pruned from the cache since (its link now leads nowhere) means synthesizing again.
    if (!assetFolders(template).every((folder) => existsSync(join(outdir, folder)))) return undefined;
    return { template, config: memo.config };
  } catch {
    return undefined;
  }
}

/** The asset folders the template's resources were built from (`aws:asset:path`, relative to the assembly). */
function assetFolders(template: CfnTemplate): string[] {
  return Object.values(template.Resources).flatMap((resource) => {
    const path = resource.Metadata?.['aws:asset:path'];
    return typeof path === 'string' && !path.includes('/') ? [path] : [];
  });
}

/** The template a runtime started on `stateDir` synthesized and serves (as `startLocalRuntime` writes it). */
export function servedTemplate(stateDir: string): CfnTemplate {
  return JSON.parse(
    readFileSync(join(stateDir, 'cdk.out', `${STACK_NAME}.template.json`), 'utf8'),
  ) as CfnTemplate;
}

/**
 * Gives the next in-process synthesis these context values, under any the caller's
 * `CDK_CONTEXT_JSON` already holds (the variable the CDK CLI itself hands context through).
 * Returns the context now in force.
 */
export function contextDefaults(defaults: Record<string, unknown>): Record<string, unknown> {
  const context = {
    ...defaults,
    ...(JSON.parse(process.env.CDK_CONTEXT_JSON ?? '{}') as Record<string, unknown>),
  };
  process.env.CDK_CONTEXT_JSON = JSON.stringify(context);
  return context;
}
