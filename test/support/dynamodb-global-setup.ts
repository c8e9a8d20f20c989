import { readdirSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { createTables, dynamoDbClient, startDynamoDbLocal } from '../../local/dynamodb';
import { IntrinsicResolver } from '../../local/template';
import { synthesizeForTests } from './synth';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoDbEndpoint: string;
    /** Test file name → (logical id → table name): each file's own set of the template's tables. */
    tableSets: Record<string, Record<string, string>>;
  }
}

const INTEGRATION_DIR = new URL('../integration/', import.meta.url);

/**
 * One DynamoDB Local for the whole integration run (in memory: every test makes its own data), and
 * in it one set of the synthesized template's tables per test file, so no file meets another's
 * data: the sweeper's and the scheduled starter's tests see every running or scheduled job of their
 * table, the reputation guard keeps one record, and the outbox tests read a whole stream.
 * Teardown stops the engine's process group.
 */
export default async function setup(project: TestProject) {
  const dynamoDb = await startDynamoDbLocal();
  try {
    const { template } = synthesizeForTests();
    const client = dynamoDbClient(dynamoDb.endpoint);
    const files = readdirSync(INTEGRATION_DIR).filter((name) => name.endsWith('.test.ts'));
    const sets = await Promise.all(
      files.map(async (file, index) => {
        const tables = await createTables(client, template, new IntrinsicResolver(template), `f${index}-`);
        return [file, Object.fromEntries(tables)] as const;
      }),
    );
    client.destroy();
    project.provide('dynamoDbEndpoint', dynamoDb.endpoint);
    project.provide('tableSets', Object.fromEntries(sets));
  } catch (error) {
    await dynamoDb.stop();
    throw error;
  }
  return () => dynamoDb.stop();
}
