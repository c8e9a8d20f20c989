/**
 * us-east-1 list prices (on-demand, no free tier), as published by AWS in 2026. Update them here
 * when AWS changes them; the benchmark prints the cost they imply.
 */
export const PRICES = {
  /** DynamoDB on-demand, per write request unit and per read request unit. */
  dynamoDbWriteUnit: 0.625 / 1e6,
  dynamoDbReadUnit: 0.125 / 1e6,
  /** SQS standard queue, per request (each 64 KB of payload is one request). */
  sqsRequest: 0.4 / 1e6,
  /** Lambda on arm64: per request, and per GB-second of duration. */
  lambdaRequest: 0.2 / 1e6,
  lambdaGbSecond: 0.0000133334,
  /** API Gateway REST API, per request (first 333 million a month). */
  apiGatewayRequest: 3.5 / 1e6,
  /** Amazon SES outbound email, per recipient (each To and Cc address of a message counts). */
  sesRecipient: 0.1 / 1e3,
} as const;
