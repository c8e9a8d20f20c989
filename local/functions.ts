import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { transformSync } from 'esbuild';
import { type CfnTemplate, type IntrinsicResolver, resourcesOfType } from './template';

/**
 * The script every function's worker runs, compiled from `lambda-worker.ts` once per runtime and
 * handed over as a `data:` URL: a worker then starts with Node's options less tsx's loader, and
 * strips no types. The loader inherited by every worker, and stripping the script in each, cost each
 * function's cold start about 0.4 s of CPU, a third of it: a run of the end-to-end tests starts
 * hundreds of workers.
 */
let workerScript: URL | undefined;
function compiledWorkerScript(): URL {
  workerScript ??= new URL(
    `data:text/javascript,${encodeURIComponent(
      transformSync(readFileSync(new URL('./lambda-worker.ts', import.meta.url), 'utf8'), {
        loader: 'ts',
        format: 'esm',
        target: 'node22',
      }).code,
    )}`,
  );
  return workerScript;
}
/**
 * The runtime's own Node options less any that load tsx: `node --import tsx` (npm start) and the
 * `tsx` command (`npm run bench`), which passes `--require …/tsx/dist/preflight.cjs --import
 * file:///…/tsx/dist/loader.mjs`. Its loader in a worker would run its hooks on every module the
 * function imports, and the SDK's are many.
 */
const LOADS_TSX = /^(tsx$|tsx\/|.*[/\\]tsx[/\\])/;
const WORKER_EXEC_ARGV = process.execArgv.filter((option, index, all) => {
  const inline = /^--(import|require|loader)=(.*)$/.exec(option);
  if (inline) return !LOADS_TSX.test(inline[2] ?? '');
  if (/^--(import|require|loader)$/.test(option)) return !LOADS_TSX.test(all[index + 1] ?? '');
  return !(/^--(import|require|loader)$/.test(all[index - 1] ?? '') && LOADS_TSX.test(option));
});

export type InvokeResult =
  | { ok: true; value: unknown }
  | { ok: false; error: { errorType: string; errorMessage: string; stack?: string } };

export interface LocalFunctionOptions {
  logicalId: string;
  functionName: string;
  /** The bundled asset folder and the handler, as `index.handler`. */
  assetDir: string;
  handler: string;
  environment: Record<string, string>;
  timeoutSeconds: number;
  memorySize: number;
  /** Execution environments kept at most, like a reserved concurrency. */
  maxConcurrency?: number;
  onLog?: (functionName: string, line: string) => void;
}

export interface FunctionStats {
  invocations: number;
  /** Time in invocations, cold starts' inits included. */
  totalMs: number;
  memorySize: number;
  /** Environments started, and the time their inits took in all (a worker's start and the bundle's module load). */
  coldStarts: number;
  initMs: number;
  /** The bundle's JavaScript (its `index` file, minified; source maps aside). */
  bundleBytes: number;
}

/** The size of an asset's entry file (`index.mjs` or `index.js`), or 0 when it has none. */
function bundleBytes(assetDir: string): number {
  if (!existsSync(assetDir)) return 0;
  const entry = readdirSync(assetDir).find((file) => /^index\.m?js$/.test(file));
  return entry ? statSync(join(assetDir, entry)).size : 0;
}

type InitOutcome =
  | { ok: true; ms: number }
  | { ok: false; ms: number; error: Extract<InvokeResult, { ok: false }>['error'] };

interface Environment {
  worker: Worker;
  busy: boolean;
  /** Settles once the module has loaded (Lambda's init phase), with how long that took. */
  ready: Promise<InitOutcome>;
  initializing: boolean;
  /** Whether an invocation has already run here (so its init was already paid for). */
  warm: boolean;
}

/** Lambda's limit on the init phase; past it, Lambda retries init inside the invocation, under its timeout. */
const INIT_LIMIT_MS = 10_000;
/**
 * Execution environments of one function that load their module at once. On a laptop's few cores,
 * ten bundles loading together each take ten times as long; a few at a time serve a burst sooner.
 */
const PARALLEL_INITS = 2;

/**
 * One Lambda function, run from its bundled asset in worker threads: each worker is an execution
 * environment with the environment variables the template gives the function, handling one event at
 * a time; more are started while all are busy. Loading the module is the init phase, timed apart as
 * Lambda times it: an invocation's timeout starts when its handler is called. An invocation past
 * its timeout ends its worker, as Lambda ends the sandbox.
 */
export class LocalFunction {
  private readonly environments: Environment[] = [];
  /** Invocations waiting for an environment; `undefined` tells them the function was closed. */
  private readonly waiting: ((environment: Environment | undefined) => void)[] = [];
  private nextId = 0;
  private closed = false;
  private invocations = 0;
  private totalMs = 0;
  private coldStarts = 0;
  private initMs = 0;

  constructor(readonly options: LocalFunctionOptions) {}

  get name(): string {
    return this.options.functionName;
  }

  /** Invocations so far and the time they took, waiting for an environment excluded; cold starts and their inits. */
  stats(): FunctionStats {
    return {
      invocations: this.invocations,
      totalMs: this.totalMs,
      memorySize: this.options.memorySize,
      coldStarts: this.coldStarts,
      initMs: this.initMs,
      bundleBytes: bundleBytes(this.options.assetDir),
    };
  }

  async invoke(event: unknown): Promise<InvokeResult> {
    const environment = await this.acquire();
    if (!environment) {
      return {
        ok: false,
        error: { errorType: 'Runtime.Closed', errorMessage: 'The local runtime is stopping' },
      };
    }
    const started = performance.now();
    try {
      const timeoutMs = this.options.timeoutSeconds * 1000;
      const init = await this.initialized(environment, timeoutMs);
      if (!init.ok) {
        this.discard(environment);
        return { ok: false, error: init.error };
      }
      // As in Lambda, an init past its own limit is finished inside the first invocation, on its clock.
      const handlerMs = environment.warm ? timeoutMs : timeoutMs - Math.max(0, init.ms - INIT_LIMIT_MS);
      if (!environment.warm) {
        this.coldStarts++;
        this.initMs += init.ms;
      }
      environment.warm = true;
      return await this.run(environment, event, handlerMs);
    } finally {
      this.invocations++;
      this.totalMs += performance.now() - started;
      this.release(environment);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) waiter(undefined);
    const workers = this.environments.splice(0).map((environment) => environment.worker.terminate());
    await Promise.all(workers);
  }

  /** Waits for the environment's module to load: Lambda's init limit, then the function's timeout. */
  private async initialized(environment: Environment, timeoutMs: number): Promise<InitOutcome> {
    let timer: NodeJS.Timeout | undefined;
    const limitMs = INIT_LIMIT_MS + timeoutMs;
    const tooLong = new Promise<InitOutcome>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            ok: false,
            ms: limitMs,
            error: {
              errorType: 'Sandbox.Timedout',
              errorMessage: `Initialization did not end within ${INIT_LIMIT_MS / 1000} seconds and the ${this.options.timeoutSeconds}-second timeout`,
            },
          }),
        limitMs,
      );
    });
    try {
      return await Promise.race([environment.ready, tooLong]);
    } finally {
      clearTimeout(timer);
    }
  }

  private run(environment: Environment, event: unknown, timeoutMs: number): Promise<InvokeResult> {
    const id = this.nextId++;
    return new Promise<InvokeResult>((resolve) => {
      const timer = setTimeout(() => {
        cleanup();
        this.discard(environment);
        resolve({
          ok: false,
          error: {
            errorType: 'Sandbox.Timedout',
            errorMessage: `Task timed out after ${this.options.timeoutSeconds} seconds`,
          },
        });
      }, timeoutMs);
      const onMessage = (message: { id?: number } & InvokeResult) => {
        if (message.id !== id) return;
        cleanup();
        const { id: _, ...result } = message;
        resolve(result as InvokeResult);
      };
      const onExit = (code: number) => {
        cleanup();
        this.discard(environment);
        resolve({
          ok: false,
          error: { errorType: 'Runtime.ExitError', errorMessage: `Runtime exited with code ${code}` },
        });
      };
      const cleanup = () => {
        clearTimeout(timer);
        environment.worker.off('message', onMessage);
        environment.worker.off('exit', onExit);
      };
      environment.worker.on('message', onMessage);
      environment.worker.on('exit', onExit);
      environment.worker.postMessage({ id, event, requestId: randomUUID(), timeoutMs });
    });
  }

  private initializingCount(): number {
    return this.environments.filter((environment) => environment.initializing).length;
  }

  private canStartEnvironment(): boolean {
    return (
      this.environments.length < (this.options.maxConcurrency ?? 10) &&
      this.initializingCount() < PARALLEL_INITS
    );
  }

  private async acquire(): Promise<Environment | undefined> {
    if (this.closed) return undefined;
    const idle = this.environments.find((environment) => !environment.busy);
    if (idle) {
      idle.busy = true;
      return idle;
    }
    if (this.canStartEnvironment()) return this.startEnvironment();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** A finished init frees a slot: invocations still waiting may get an environment of their own. */
  private grow(): void {
    while (!this.closed && this.waiting.length > 0 && this.canStartEnvironment()) {
      this.waiting.shift()?.(this.startEnvironment());
    }
  }

  private release(environment: Environment): void {
    if (this.closed) return;
    if (!this.environments.includes(environment)) {
      // Its worker was discarded: a waiting invocation gets a fresh environment, within the limit
      // on environments loading at once (else a finished init hands it one).
      this.grow();
      return;
    }
    const next = this.waiting.shift();
    if (next) next(environment);
    else environment.busy = false;
  }

  private discard(environment: Environment): void {
    const index = this.environments.indexOf(environment);
    if (index >= 0) this.environments.splice(index, 1);
    void environment.worker.terminate();
  }

  private startEnvironment(): Environment {
    const worker = this.startWorker();
    const started = performance.now();
    const environment: Environment = {
      worker,
      busy: true,
      initializing: true,
      warm: false,
      ready: new Promise<InitOutcome>((resolve) => {
        const settle = (outcome: InitOutcome) => {
          worker.off('message', onMessage);
          worker.off('exit', onExit);
          environment.initializing = false;
          resolve(outcome);
          this.grow();
        };
        const onMessage = (message: {
          type?: string;
          error?: { errorType: string; errorMessage: string };
        }) => {
          const ms = performance.now() - started;
          if (message.type === 'ready') settle({ ok: true, ms });
          else if (message.type === 'initError' && message.error)
            settle({ ok: false, ms, error: { ...message.error, errorType: 'Runtime.ImportModuleError' } });
        };
        const onExit = (code: number) =>
          settle({
            ok: false,
            ms: performance.now() - started,
            error: {
              errorType: 'Runtime.ExitError',
              errorMessage: `Runtime exited with code ${code} during init`,
            },
          });
        worker.on('message', onMessage);
        worker.on('exit', onExit);
      }),
    };
    // A worker that dies while idle leaves the pool, so no invocation waits on it.
    worker.once('exit', () => {
      if (!environment.busy) this.discard(environment);
    });
    this.environments.push(environment);
    return environment;
  }

  private startWorker(): Worker {
    const { assetDir, handler, functionName, environment, memorySize } = this.options;
    const [moduleName, exportName = 'handler'] = handler.split('.');
    const modulePath = ['.mjs', '.js', '.cjs']
      .map((extension) => join(assetDir, `${moduleName}${extension}`))
      .find((candidate) => existsSync(candidate));
    if (!modulePath) throw new Error(`No module ${moduleName} in ${assetDir} for ${functionName}`);
    const worker = new Worker(compiledWorkerScript(), {
      execArgv: WORKER_EXEC_ARGV,
      env: environment,
      stdout: true,
      stderr: true,
      workerData: {
        modulePath,
        exportName,
        functionName,
        memorySize,
        enableSourceMaps: (environment.NODE_OPTIONS ?? '').includes('--enable-source-maps'),
      },
    });
    for (const stream of [worker.stdout, worker.stderr]) {
      stream.setEncoding('utf8');
      let pending = '';
      stream.on('data', (chunk: string) => {
        const lines = (pending + chunk).split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) this.options.onLog?.(functionName, line);
      });
    }
    // A crashed worker leaves the pool (see startEnvironment); an unhandled error must not end the runtime.
    worker.on('error', (error) => this.options.onLog?.(functionName, `worker error: ${error.message}`));
    return worker;
  }
}

interface FunctionProperties {
  FunctionName?: string;
  ReservedConcurrentExecutions?: number;
  Handler?: string;
  Timeout?: number;
  MemorySize?: number;
  Environment?: { Variables?: Record<string, string> };
}

/**
 * Finds every `AWS::Lambda::Function` of the template with a bundled asset and prepares it to run
 * with its template environment plus `baseEnvironment` (local credentials and endpoints).
 */
export function functionsFromTemplate(
  template: CfnTemplate,
  resolver: IntrinsicResolver,
  options: {
    assemblyDir: string;
    baseEnvironment: Record<string, string>;
    /** Variables a function gets on top of the others (its own credentials, say). */
    environmentOf?: (logicalId: string) => Record<string, string>;
    /** Applied to each value of a function's template environment (the API's deployed URL becomes the local one). */
    rewrite?: (value: string) => string;
    onLog?: LocalFunctionOptions['onLog'];
  },
): Map<string, LocalFunction> {
  const functions = new Map<string, LocalFunction>();
  const lambdaResources = resourcesOfType(template, 'AWS::Lambda::Function');
  for (const [logicalId, resource] of lambdaResources) {
    const properties = (resource.Properties ?? {}) as FunctionProperties;
    const functionName = properties.FunctionName ?? logicalId;
    resolver.register(logicalId, {
      ref: functionName,
      attributes: { Arn: resolver.arn(resource.Type, `function:${functionName}`) },
    });
  }
  for (const [logicalId, resource] of lambdaResources) {
    const assetPath = resource.Metadata?.['aws:asset:path'];
    if (typeof assetPath !== 'string') continue;
    const properties = resolver.resolve(resource.Properties ?? {}) as FunctionProperties;
    const functionName = properties.FunctionName ?? logicalId;
    const memorySize = properties.MemorySize ?? 128;
    const timeoutSeconds = properties.Timeout ?? 3;
    functions.set(
      logicalId,
      new LocalFunction({
        logicalId,
        functionName,
        assetDir: join(options.assemblyDir, assetPath),
        handler: properties.Handler ?? 'index.handler',
        timeoutSeconds,
        memorySize,
        // A reserved concurrency caps the environments, as in Lambda (locally, the invocations past
        // it wait for one instead of being throttled).
        ...(properties.ReservedConcurrentExecutions !== undefined
          ? { maxConcurrency: Math.min(properties.ReservedConcurrentExecutions, 10) }
          : {}),
        environment: {
          ...options.baseEnvironment,
          ...Object.fromEntries(
            Object.entries(properties.Environment?.Variables ?? {}).map(([name, value]) => [
              name,
              options.rewrite ? options.rewrite(String(value)) : String(value),
            ]),
          ),
          ...options.environmentOf?.(logicalId),
          AWS_LAMBDA_FUNCTION_NAME: functionName,
          AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memorySize),
          AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
          // As Lambda sets it: Powertools reads it to tell cold starts.
          AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
          AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${functionName}`,
        },
        ...(options.onLog ? { onLog: options.onLog } : {}),
      }),
    );
  }
  return functions;
}
