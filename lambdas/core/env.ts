import * as z from './zod';

/**
 * Reads the environment through one schema and fails at cold start, naming every missing or bad
 * variable, instead of failing later inside a request with `undefined`.
 */
export function readEnv<T extends z.ZodRawShape>(shape: T, source: NodeJS.ProcessEnv = process.env) {
  const result = z.object(shape).safeParse(source);
  if (!result.success) {
    throw new Error(`Invalid environment: ${describeIssues(result.error)}`);
  }
  return result.data;
}

/** A DynamoDB table name as CloudFormation hands it to a function. */
export const tableName = z.string().min(3).max(255);

/** A zod error as one line naming each setting and its problem, for errors raised at start-up. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
}
