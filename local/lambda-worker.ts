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
  enableSourceMaps: boolean;
}

interface Invocation {
  id: number;
  event: unknown;
  requestId: string;
  /** What is left of the function's timeout for this invocation. */
  timeoutMs: number;
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
// The parent times initialization apart from invocations (Lambda's init phase has its own limit),
// so it is told when the module has loaded, or why it could not.
handlerReady.then(
  () => port.postMessage({ type: 'ready' }),
  (error: unknown) => port.postMessage({ type: 'initError', error: describeError(error) }),
);

/** Lambda's limit on a synchronous invocation's response; past it the caller gets an error instead. */
const MAX_RESPONSE_BYTES = 6_291_556;

port.on('message', async ({ id, event, requestId, timeoutMs }: Invocation) => {
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
    getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - started)),
  };
  try {
    const handler = await handlerReady;
    const value = await handler(event, context);
    const size = Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
    if (size > MAX_RESPONSE_BYTES) {
      port.postMessage({
        id,
        ok: false,
        error: {
          errorType: 'Function.ResponseSizeTooLarge',
          errorMessage: `Response payload size (${size} bytes) exceeded maximum allowed payload size (${MAX_RESPONSE_BYTES} bytes).`,
        },
      });
      return;
    }
    port.postMessage({ id, ok: true, value });
  } catch (error) {
    port.postMessage({ id, ok: false, error: describeError(error) });
  }
});
