import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isRunning } from '../../local/processes';
import { PROJECT_ROOT } from '../../local/synth';
import { checkAgainstContract } from './contract';

export { isRunning };

export interface RuntimeProcess {
  url: string;
  /** The first key the banner prints: the operator's, which may call every route. */
  apiKey: string;
  /** Every key the banner prints, by name, with its scopes. */
  keys: Map<string, { scopes: string[]; value: string }>;
  /** The local SES's inbox (`readInbox` in local/ses.ts reads what the functions sent). */
  inboxUrl: string;
  /** The local SES's API endpoint (identities of a sandboxed account are created there). */
  sesEndpoint: string;
  /** DynamoDB Local's endpoint, to read what is stored. */
  dynamoDbEndpoint: string;
  /** The queues SES's bounce and complaint events arrive on (none with the record transport). */
  sesEventQueues: string[];
  /** The local EventBridge's list of the events the stack put on its bus (`readEvents` reads it). */
  eventsUrl: string;
  /** The local Secrets Manager (`rotate-secret` runs the template's rotation function). */
  secretsEndpoint: string;
  /** The secrets that rotate, by name: the unsubscribe link secret. */
  rotatableSecrets: string[];
  child: ChildProcess;
  output: string[];
  /** The DynamoDB Local (Java) process the runtime started, from the pid file it keeps. */
  javaPid(): number;
  /** Sends the signal and resolves once the runtime has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * The CDK context a test runtime gets: the test's own over this default. Outcomes are counted on
 * their jobs as soon as the stream is read, not after five seconds, so tests wait less. The
 * reputation guard never pauses unless a test asks it to: tests that make the mailbox simulator
 * complain would otherwise pause the sending of the tests after them. A runtime started another
 * way in a test takes the same, or its synthesis is not the one already cached.
 */
export const runtimeContextJson = (context: Record<string, unknown> = {}) =>
  JSON.stringify({ countingWindowSeconds: 0, reputationMinVolume: 1_000_000_000, ...context });

/**
 * Starts the local runtime exactly as `npm start` does (`node --import tsx bin/local.ts`), on a free
 * port, with its own state folder and optional CDK context, and reads the URLs and key it prints.
 */
export async function startRuntimeProcess(options: {
  stateDir: string;
  context?: Record<string, unknown>;
}): Promise<RuntimeProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/local.ts'], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      PORT: '0',
      LOCAL_STATE_DIR: options.stateDir,
      CDK_CONTEXT_JSON: runtimeContextJson(options.context),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const keys = new Map<string, { scopes: string[]; value: string }>();
  const ready = new Promise<{
    url: string;
    apiKey: string;
    inboxUrl: string;
    sesEndpoint: string;
    dynamoDbEndpoint: string;
    sesEventQueues: string[];
    eventsUrl: string;
    secretsEndpoint: string;
    rotatableSecrets: string[];
  }>((resolve, reject) => {
    let url: string | undefined;
    let apiKey: string | undefined;
    let inboxUrl: string | undefined;
    let sesEndpoint: string | undefined;
    let sesEventQueues: string[] = [];
    let eventsUrl: string | undefined;
    let secrets: { endpoint: string; rotatable: string[] } | undefined;
    const timer = setTimeout(
      () => reject(new Error(`The runtime did not start:\n${output.join('\n')}`)),
      150_000,
    );
    const onLine = (line: string) => {
      output.push(line);
      // For a failure to look into: every line the runtime printed, in a file named by its state folder.
      if (process.env.E2E_RUNTIME_LOG_DIR)
        appendFileSync(
          join(process.env.E2E_RUNTIME_LOG_DIR, `${basename(options.stateDir)}.log`),
          `${line}\n`,
        );
      url ??= /^\s+API:\s+(\S+)/.exec(line)?.[1];
      // `  API key <name> (scopes: <scopes>): <value>`, the operator's first.
      const key = /^\s+API key (\S+) \(scopes: ([^)]*)\):\s+(\S+)/.exec(line);
      if (key?.[1] && key[2] !== undefined && key[3]) {
        keys.set(key[1], { scopes: key[2].split(', '), value: key[3] });
        apiKey ??= key[3];
      }
      inboxUrl ??= /^\s+Inbox:\s+(\S+)/.exec(line)?.[1];
      sesEndpoint ??= /^\s+SES API:\s+(\S+)/.exec(line)?.[1];
      const events = /^\s+SES events:\s+(.+)$/.exec(line)?.[1];
      if (events?.startsWith('http')) sesEventQueues = events.trim().split(/\s+/);
      eventsUrl ??= /^\s+Events:\s+(\S+)/.exec(line)?.[1];
      const secretsLine = /^\s+Secrets:\s+(\S+) \(rotate: .* --secret-id (\S+)\)$/.exec(line);
      if (secretsLine?.[1] && secretsLine[2])
        secrets ??= { endpoint: secretsLine[1], rotatable: secretsLine[2].split('|') };
      // The banner prints DynamoDB last: once it is read, so have the others been.
      const dynamoDbEndpoint = /^\s+DynamoDB:\s+(\S+)/.exec(line)?.[1];
      if (url && apiKey && inboxUrl && sesEndpoint && eventsUrl && secrets && dynamoDbEndpoint) {
        clearTimeout(timer);
        resolve({
          url,
          apiKey,
          inboxUrl,
          sesEndpoint,
          dynamoDbEndpoint,
          sesEventQueues,
          eventsUrl,
          secretsEndpoint: secrets.endpoint,
          rotatableSecrets: secrets.rotatable,
        });
      }
    };
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) onLine(line);
      });
    }
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`The runtime exited before it was ready:\n${output.join('\n')}`));
    });
  });
  const started = await ready;
  return {
    ...started,
    keys,
    child,
    output,
    javaPid: () => {
      const pidFile = `${options.stateDir}/dynamodb-local.pid`;
      if (!existsSync(pidFile)) throw new Error('No DynamoDB Local pid file');
      return (JSON.parse(readFileSync(pidFile, 'utf8')) as { pid: number }).pid;
    },
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/**
 * A small HTTP client for the tests: JSON in, status and parsed JSON out. Every answer is held to the
 * published contract (openapi.json): an undocumented status, a missing required header or a body
 * off its schema fails the test that received it.
 */
export function apiClient(
  baseUrl: string,
  apiKey?: string,
  { serverErrorsExpected = false }: { serverErrorsExpected?: boolean } = {},
) {
  return async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { ...(apiKey ? { 'x-api-key': apiKey } : {}), 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    const answer = {
      status: response.status,
      headers: response.headers,
      body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    };
    checkAgainstContract({
      method,
      path,
      ...answer,
      body: text ? answer.body : undefined,
      serverErrorsExpected,
    });
    return answer;
  };
}

/** Polls `read` until `done` holds of its answer: jobs end, and SES's reports arrive, seconds later. */
export async function waitFor<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`Still not there: ${JSON.stringify(value)}`);
    await sleep(250);
  }
}
