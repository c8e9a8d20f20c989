import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
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

/** The middlewares every handler runs with: context in each log line, metrics flushed at the end. */
export function telemetry<E, R>(): middy.MiddlewareObj<E, R>[] {
  return [
    injectLambdaContext(logger, { resetKeys: true }) as middy.MiddlewareObj<E, R>,
    logMetrics(metrics, { captureColdStartMetric: true }) as middy.MiddlewareObj<E, R>,
  ];
}
