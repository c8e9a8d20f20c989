import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { inject } from 'vitest';
import { dynamoDbClient } from '../../local/dynamodb';

/** The name DynamoDB Local gave the template's table whose logical id starts with `prefix` (`DataJobs`). */
export function tableNamed(prefix: string): string {
  const found = Object.entries(inject('tableNames')).find(([logicalId]) => logicalId.startsWith(prefix));
  if (!found) throw new Error(`No table ${prefix} in the synthesized template`);
  return found[1];
}

/** A document client on the run's DynamoDB Local (the global set-up's); `destroy` it after the file. */
export function localDocumentClient() {
  const raw = dynamoDbClient(inject('dynamoDbEndpoint'));
  const client = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
  return { client, destroy: () => raw.destroy() };
}
