#!/usr/bin/env node
// `npm start`: the whole system on this machine, from the synthesized CDK template.
import { resolve } from 'node:path';
import { type LocalRuntime, startLocalRuntime } from '../local/runtime';
import { PROJECT_ROOT } from '../local/synth';

const port = Number(process.env.PORT ?? 3000);
const stateDir = resolve(process.env.LOCAL_STATE_DIR ?? `${PROJECT_ROOT}.local`);

let runtime: LocalRuntime | undefined;
let stopping = false;

async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log('Stopping the local runtime…');
  await runtime?.stop();
  process.exit(code);
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
process.on('uncaughtException', (error) => {
  console.error(error);
  void shutdown(1);
});
// Whatever happens, the Java process group does not outlive this one.
process.on('exit', () => runtime?.killNow());

try {
  console.log('Synthesizing the CDK app and starting the local runtime…');
  runtime = await startLocalRuntime({ port, stateDir });
  const [key] = runtime.apiKeys;
  console.log(`
nonprofit-mailer is running locally.
  API:      ${runtime.url}
  API key:  ${key?.value ?? '(none)'}
  Metrics:  ${runtime.metricsUrl}
  DynamoDB: ${runtime.dynamoDbEndpoint} (data in ${stateDir}/dynamodb)

Try:
  curl ${runtime.url}/health
  curl -H "x-api-key: ${key?.value}" ${runtime.url}/nonprofits

Ctrl-C stops everything.`);
} catch (error) {
  console.error('The local runtime could not start:', error);
  await shutdown(1);
}
