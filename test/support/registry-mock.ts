import { BatchGetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AwsStub } from 'aws-sdk-client-mock';

/** Answers the mocked document client's BatchGetItem of nonprofits from `find`: the item of an address, or nothing. */
export function answerRegistryReads(
  // biome-ignore lint/suspicious/noExplicitAny: the stub's input and output types are the client's own.
  dynamo: AwsStub<any, any, DynamoDBDocumentClient['config']>,
  find: (email: string) => Record<string, unknown> | undefined,
): void {
  dynamo
    .on(BatchGetCommand)
    .callsFake((input: { RequestItems: Record<string, { Keys: { email: string }[] }> }) => {
      const [table, { Keys }] = Object.entries(input.RequestItems)[0] as [
        string,
        { Keys: { email: string }[] },
      ];
      return { Responses: { [table]: Keys.flatMap((key) => find(key.email) ?? []) } };
    });
}
