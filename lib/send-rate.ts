import { RECIPIENTS_PER_MESSAGE } from '../lambdas/core/queue/email-queue';
import type { MailerConfig } from './config';

/** Sends one execution environment is asked to keep up at most, per second (SES answers in tens of ms). */
const RATE_PER_ENVIRONMENT = 10;
/** Lambda's SQS event source runs at least two consumers at once. */
const MIN_CONCURRENCY = 2;
/** Share of the consumer's timeout a full batch may take at its environment's pace; the rest is margin. */
const SEND_TIME_SHARE = 0.5;

export interface ConsumerScaling {
  /** The event source's maximum concurrency. */
  maxConcurrency: number;
  /** Messages per batch (each carries up to `RECIPIENTS_PER_MESSAGE` recipients). */
  batchSize: number;
  /** Recipients per second each environment sends at most (unset: no pacing, the `record` transport). */
  ratePerEnvironment: number | undefined;
}

/**
 * The consumer's concurrency and batch follow from SES's maximum send rate: at most
 * `maxConcurrency` environments run at once, each paced to an equal share of the rate, so together
 * they never exceed it. Concurrency grows with the rate (about ten sends a second each), within
 * `consumerMaxConcurrency`; a batch is the messages (of `RECIPIENTS_PER_MESSAGE` recipients) an
 * environment sends in half its timeout, within `consumerBatchSize` and at least one. That sizing
 * counts one recipient per email and full messages: cc copies, or a
 * rate too low for even one email in half the timeout, make a batch take longer, and a consumer
 * that runs short of time puts the rest of its batch back in the queue, uncounted.
 */
export function consumerScaling(config: MailerConfig): ConsumerScaling {
  if (config.transport !== 'ses') {
    return {
      maxConcurrency: config.consumerMaxConcurrency,
      batchSize: config.consumerBatchSize,
      ratePerEnvironment: undefined,
    };
  }
  const maxConcurrency = Math.min(
    config.consumerMaxConcurrency,
    Math.max(MIN_CONCURRENCY, Math.ceil(config.sesMaxSendRate / RATE_PER_ENVIRONMENT)),
  );
  const ratePerEnvironment = config.sesMaxSendRate / maxConcurrency;
  const batchSize = Math.min(
    config.consumerBatchSize,
    Math.max(
      1,
      Math.floor(
        (ratePerEnvironment * config.consumerTimeoutSeconds * SEND_TIME_SHARE) / RECIPIENTS_PER_MESSAGE,
      ),
    ),
  );
  return { maxConcurrency, batchSize, ratePerEnvironment };
}
