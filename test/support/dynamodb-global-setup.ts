import type { TestProject } from 'vitest/node';
import { createTables, dynamoDbClient, startDynamoDbLocal } from '../../local/dynamodb';
import { IntrinsicResolver } from '../../local/template';
import { synthesizeForTests } from './synth';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoDbEndpoint: string;
    /** Logical id → table name of the tables created from the synthesized template. */
    tableNames: Record<string, string>;
  }
}

/**
 * One DynamoDB Local for the whole integration run (in memory: every test makes its own data),
 * with the tables the synthesized template declares. Teardown stops its process group.
 */
export default async function setup(project: TestProject) {
  const dynamoDb = await startDynamoDbLocal();
  try {
    const { template } = synthesizeForTests();
    const client = dynamoDbClient(dynamoDb.endpoint);
    const tables = await createTables(client, template, new IntrinsicResolver(template));
    client.destroy();
    project.provide('dynamoDbEndpoint', dynamoDb.endpoint);
    project.provide('tableNames', Object.fromEntries(tables));
  } catch (error) {
    await dynamoDb.stop();
    throw error;
  }
  return () => dynamoDb.stop();
}
