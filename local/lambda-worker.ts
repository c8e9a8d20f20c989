// Runs inside a worker thread: loads one function's bundled asset and invokes its handler, one
// event at a time, as a Lambda execution environment does. Kept free of imports beyond Node's own.
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';

interface WorkerInput {
  modulePath: string;
  exportName: string;
  functionName: string;
  memorySize: number;
  timeoutMs: number;
  enableSourceMaps: boolean;
}

interface Invocation {
  id: number;
  event: unknown;
  requestId: string;
}

type Handler = (event: unknown, context: Record<string, unknown>) => Promise<unknown>;

const input = workerData as WorkerInput;
const port = parentPort;
if (!port) throw new Error('lambda-worker must run in a worker thread');
if (input.enableSourceMaps) process.setSourceMapsEnabled(true);

const describeError = (error: unknown) => {
  const failure = error instanceof Error ? error : new Error(String(error));
  return { errorType: failure.name, errorMessage: failure.message, stack: failure.stack };
};

const handlerReady: Promise<Handler> = import(pathToFileURL(input.modulePath).href).then((module) => {
  const handler = (module as Record<string, unknown>)[input.exportName];
  if (typeof handler !== 'function') {
    throw new Error(`${input.modulePath} does not export a function named ${input.exportName}`);
  }
  return handler as Handler;
});
// An init error is reported with the first invocation, as Lambda reports Runtime.ImportModuleError.
handlerReady.catch(() => undefined);

port.on('message', async ({ id, event, requestId }: Invocation) => {
  const started = Date.now();
  const context = {
    functionName: input.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${input.functionName}`,
    memoryLimitInMB: String(input.memorySize),
    awsRequestId: requestId || randomUUID(),
    logGroupName: `/aws/lambda/${input.functionName}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, input.timeoutMs - (Date.now() - started)),
  };
  try {
    const handler = await handlerReady;
    const value = await handler(event, context);
    port.postMessage({ id, ok: true, value });
  } catch (error) {
    port.postMessage({ id, ok: false, error: describeError(error) });
  }
});
