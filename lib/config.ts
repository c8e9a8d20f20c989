import type { Node } from 'constructs';
import { z } from 'zod';

/**
 * Deployment settings, read from CDK context (`cdk.json`, or `-c key=value` on the command line,
 * which arrives as a string and is coerced). The local runtime reads the synthesized template, so
 * these values reach it through the template and are never repeated there.
 */
const configSchema = z.object({
  /** Steady requests per second each API key may make. */
  usagePlanRateLimit: z.coerce.number().positive().default(50),
  /** Requests each API key may make at once, above the steady rate (the token bucket's size). */
  usagePlanBurstLimit: z.coerce.number().int().nonnegative().default(100),
  /** Requests each API key may make per day. */
  usagePlanQuotaPerDay: z.coerce.number().int().positive().default(100_000),
  /** Steady requests per second the whole stage takes, all keys together: a ceiling that keeps one API from using the account's shared limit. */
  stageRateLimit: z.coerce.number().positive().default(500),
  /** Burst the whole stage takes, all keys together. */
  stageBurstLimit: z.coerce.number().int().nonnegative().default(1000),
});

export type MailerConfig = z.output<typeof configSchema>;
export const CONFIG_KEYS = Object.keys(configSchema.shape) as (keyof MailerConfig)[];

export function readConfig(node: Node): MailerConfig {
  const raw = Object.fromEntries(CONFIG_KEYS.map((key) => [key, node.tryGetContext(key)]));
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`Invalid CDK context: ${problems.join('; ')}`);
  }
  return result.data;
}
