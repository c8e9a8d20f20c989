import { basename } from 'node:path';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { expect, inject } from 'vitest';
import { dynamoDbClient } from '../../local/dynamodb';

/** Logical id → table name of the calling test file's own set of the template's tables. */
export function tablesOfThisFile(): Record<string, string> {
  const testPath = expect.getState().testPath;
  const tables = testPath ? inject('tableSets')[basename(testPath)] : undefined;
  if (!tables)
    throw new Error(`No tables were made for ${testPath ?? 'this file'}: is it in test/integration?`);
  return tables;
}

/**
 * The name of the calling test file's own copy of the template's table whose logical id starts with
 * `prefix` (`DataJobs`): every integration file has a set of its own (see the global set-up).
 */
export function tableNamed(prefix: string): string {
  const found = Object.entries(tablesOfThisFile()).find(([logicalId]) => logicalId.startsWith(prefix));
  if (!found) throw new Error(`No table ${prefix} in the synthesized template`);
  return found[1];
}

/** A document client on the run's DynamoDB Local (the global set-up's); `destroy` it after the file. */
export function localDocumentClient() {
  const raw = dynamoDbClient(inject('dynamoDbEndpoint'));
  const client = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
  return { client, destroy: () => raw.destroy() };
}
