import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * AWS clients are created once per execution environment, at module scope, so warm invocations
 * reuse their connections. Endpoints come from the standard SDK settings (`AWS_ENDPOINT_URL_DYNAMODB` and
 * `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_SESV2` locally), so no handler knows whether it runs in AWS or on a laptop.
 */
export const documentClient = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});

export const sqsClient = new SQSClient({});

export const secretsManagerClient = new SecretsManagerClient({});

/** For reading SES's state (health): the SDK's usual retries are harmless there. */
export const sesClient = new SESv2Client({});

/**
 * For sending: one attempt per call. SendEmail has no idempotency token, so an SDK retry after SES
 * took an email (a reset connection, a timeout) would send it twice, and retries would not wait
 * for the pacer; the consumer decides what a failure means. Timeouts keep a hung call from using
 * up the invocation: the request timeout is shorter than the time the consumer keeps for recording
 * (process-emails.ts), and only throws when asked to (otherwise the handler merely warns).
 */
export const SES_SEND_CLIENT_CONFIG = {
  maxAttempts: 1,
  requestHandler: { connectionTimeout: 2_000, requestTimeout: 3_000, throwOnRequestTimeout: true },
} as const;
export const sesSendClient = new SESv2Client(SES_SEND_CLIENT_CONFIG);
