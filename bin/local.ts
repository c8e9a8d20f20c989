#!/usr/bin/env node
import { resolve } from 'node:path';
// `npm start`: the whole system on this machine, from the synthesized CDK template.
import { operatorFirst } from '../local/api-keys';
import { killStartedProcessesNow } from '../local/processes';
import { type LocalRuntime, startLocalRuntime } from '../local/runtime';
import { PROJECT_ROOT } from '../local/synth';

// Everything the runtime and its engines create (the state directory's files, DynamoDB Local's
// database, the synthesized template) is the user's alone: it holds addresses, keys and secrets.
process.umask(0o077);

const port = Number(process.env.PORT ?? 3000);
const stateDir = resolve(process.env.LOCAL_STATE_DIR ?? `${PROJECT_ROOT}.local`);
/** How long a clean stop may take before the engines are killed outright. */
const STOP_DEADLINE_MS = 15_000;

let starting: Promise<LocalRuntime> | undefined;
let stopping = false;
/** Set once stdout or stderr fails (a closed terminal, a dead reader of the pipe): nothing is written after. */
let outputGone = false;

function say(line: string, stream: NodeJS.WriteStream = process.stdout): void {
  if (outputGone) return;
  try {
    stream.write(`${line}\n`);
  } catch {
    outputGone = true;
  }
}

async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  say('Stopping the local runtime…');
  // A stop that hangs must not leave the engines behind: past the deadline they are killed.
  setTimeout(() => process.exit(code), STOP_DEADLINE_MS).unref();
  try {
    // A signal during start-up waits for the engines being started, so none is left behind.
    const runtime = await starting?.catch(() => undefined);
    await runtime?.stop();
  } finally {
    process.exit(code);
  }
}

// A second signal does not wait for the clean stop: the exit handler kills the engines at once.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => (stopping ? process.exit(0) : void shutdown(0)));
}
// Without a reader, every write would fail again: stop instead of spinning on errors.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', () => {
    if (outputGone) return;
    outputGone = true;
    void shutdown(0);
  });
}
process.on('uncaughtException', (error) => {
  say(String(error.stack ?? error), process.stderr);
  void shutdown(1);
});
// A runtime whose parent is gone (a test runner or a supervisor killed outright, which can forward no
// signal) has nobody left to stop it: it stops itself, as on Ctrl-C.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) void shutdown(0);
}, 1_000).unref();
// Whatever happens, even an exit during start-up, the Java process group does not outlive this one.
process.on('exit', () => killStartedProcessesNow());

try {
  say('Synthesizing the CDK app and starting the local runtime…');
  starting = startLocalRuntime({ port, stateDir, log: (line) => say(line) });
  const runtime = await starting;
  // The operator key first: it may call every route.
  const keys = operatorFirst(runtime.apiKeys);
  const [key] = keys;
  // Stopped during start-up: shutdown() has the runtime now; no banner for a system going away.
  if (!stopping)
    say(`
nonprofit-mailer is running locally.
  API:      ${runtime.url}
${keys.map((each) => `  ${each.description ?? `API key ${each.id}`}: ${each.value}`).join('\n') || '  API key:  (none)'}
  Metrics:  ${runtime.metricsUrl}
  Inbox:    ${runtime.inboxUrl} (emails sent through the local SES)
  SES API:  ${runtime.sesEndpoint} (aws sesv2 --endpoint-url; with sesSandbox set, verify recipients here)
  SES events: ${runtime.sesEventQueues.join(' ') || '(none: the record transport sends nothing)'}
  Events:   ${runtime.eventsUrl} (what the stack put on its EventBridge bus; also ${stateDir}/events.jsonl)
  Secrets:  ${runtime.secretsEndpoint} (rotate: aws secretsmanager rotate-secret --endpoint-url ${runtime.secretsEndpoint} --secret-id ${runtime.rotatableSecrets.join('|') || '(none)'})
  DynamoDB: ${runtime.dynamoDbEndpoint} (data in ${stateDir}/dynamodb)

Try:
  curl ${runtime.url}/health
  curl -H "x-api-key: ${key?.value}" ${runtime.url}/nonprofits

Ctrl-C stops everything.`);
} catch (error) {
  say(
    `The local runtime could not start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    process.stderr,
  );
  await shutdown(1);
}
