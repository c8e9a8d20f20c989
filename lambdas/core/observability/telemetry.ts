import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type middy from '@middy/core';
import { METRICS_NAMESPACE, SERVICE_NAME } from './metric-names';

/**
 * One logger and one metrics emitter per execution environment. Logs are JSON lines carrying the
 * request id, cold start and whatever keys a handler appends (`job_id`, `api_key_id`); never a
 * rendered body, a template or an API key's value. Metrics are CloudWatch embedded metric format
 * lines on stdout: no PutMetricData call on the hot path.
 */
export const logger = new Logger({ serviceName: SERVICE_NAME });
export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });

/**
 * Flushes what the invocation counted, on success and on error alike. Unlike Powertools' own
 * middleware it stays silent when there is nothing to flush (most API routes count nothing).
 */
const flushMetrics = <E, R>(): middy.MiddlewareObj<E, R> => {
  const flush = async () => {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  };
  return { after: flush, onError: flush };
};

/** The middlewares every handler runs with: context in each log line, metrics flushed at the end. */
export function telemetry<E, R>(): middy.MiddlewareObj<E, R>[] {
  return [
    injectLambdaContext(logger, { resetKeys: true }) as middy.MiddlewareObj<E, R>,
    flushMetrics<E, R>(),
  ];
}
