import { SEND_CONCURRENCY } from '../lambdas/core/jobs/consumer/send-step';
import { RECIPIENTS_PER_MESSAGE } from '../lambdas/core/queue/email-queue';
import type { MailerConfig } from '../lib/config';
import { consumerScaling } from '../lib/send-rate';
import { PRICES } from './prices';

/**
 * What AWS's own calls take, for pricing the consumer's Lambda time at a send rate (local durations
 * say how fast this machine's emulators are, not what Lambda bills). The figures and where they
 * come from are in BENCHMARKS.md; change them here and the benchmark prices them.
 */
export const AWS_LATENCY_MS = {
  /** A DynamoDB single-item read or write in the same region ("single-digit milliseconds"). */
  dynamoDbCall: 8,
  /** A DynamoDB transaction: about twice a single write (it is two-phase). */
  dynamoDbTransaction: 20,
  /** An SES v2 SendEmail call with a raw message of a few KB (no published figure: an assumption). */
  sesSend: 80,
  /** Lambda's own work per invocation of a warm environment (the event, the handler, the answer). */
  invocationOverhead: 5,
};

/** The consumer's DynamoDB calls on its critical path today: per batch (all at once), and per message sent. */
const CONSUMER_CALLS = {
  /** The chunks' claims (in parallel), the reads before sending (in parallel, the cancel look among them), the snapshot's write. */
  perBatch: 3,
  /** The outcome's write after each send (the cancel look is shared for a second, so at most one a second besides). */
  perMessage: 1,
};

/**
 * The outcome counter (the deliveries stream's function, 512 MB): one invocation per counting
 * window (`countingWindowSeconds`), of its overhead and one transaction per job counted (one job here).
 */
const COUNTER_MEMORY_MB = 512;

export interface CostPerMillion {
  dynamodb: number;
  sqs: number;
  lambda: number;
  total: number;
}

/**
 * The infrastructure's cost per million emails at a send rate: DynamoDB and SQS as measured per
 * email (they do not depend on the rate), and the consumer's Lambda time from the latency model at
 * the consumer's sizing for that rate (`consumerScaling`): an environment paced to its share of the
 * rate is billed while it waits for its turn, so its batch lasts at least `batch / rate` seconds.
 */
export function costAtSendRate(
  config: MailerConfig,
  rate: number,
  measured: {
    /** DynamoDB dollars and SQS dollars per email, as counted. */
    dynamodbPerEmail: number;
    sqsPerEmail: number;
    /** SES messages per email (1 plus cc copies). */
    messagesPerEmail: number;
    consumerMemoryMb: number;
  },
): CostPerMillion {
  const { batchSize, ratePerEnvironment } = consumerScaling({ ...config, sesMaxSendRate: rate });
  const envRate = ratePerEnvironment ?? rate;
  // A batch of full messages, each a chunk of recipients.
  const emails = batchSize * RECIPIENTS_PER_MESSAGE;
  const messages = emails * measured.messagesPerEmail;
  const sending =
    (messages * (AWS_LATENCY_MS.sesSend + CONSUMER_CALLS.perMessage * AWS_LATENCY_MS.dynamoDbCall)) /
    SEND_CONCURRENCY;
  const paced = (messages / envRate) * 1000;
  const batchMs =
    AWS_LATENCY_MS.invocationOverhead +
    CONSUMER_CALLS.perBatch * AWS_LATENCY_MS.dynamoDbCall +
    Math.max(sending, paced);
  const gbSecondsPerEmail = ((batchMs / 1000) * (measured.consumerMemoryMb / 1024)) / emails;
  // Emails one counter invocation counts: a window's worth at this rate (at most its batch of 1,000 records, two an email).
  const countedPerInvocation = Math.min(rate * Math.max(1, config.countingWindowSeconds), 500);
  const counterMs = AWS_LATENCY_MS.invocationOverhead + AWS_LATENCY_MS.dynamoDbTransaction;
  const counterPerEmail =
    ((counterMs / 1000) * (COUNTER_MEMORY_MB / 1024) * PRICES.lambdaGbSecond + PRICES.lambdaRequest) /
    countedPerInvocation;
  const lambda = gbSecondsPerEmail * PRICES.lambdaGbSecond + PRICES.lambdaRequest / emails + counterPerEmail;
  const million = (perEmail: number) => Number((perEmail * 1e6).toFixed(3));
  const total = measured.dynamodbPerEmail + measured.sqsPerEmail + lambda;
  return {
    dynamodb: million(measured.dynamodbPerEmail),
    sqs: million(measured.sqsPerEmail),
    lambda: million(lambda),
    total: Number((total * 1e6).toFixed(2)),
  };
}
