import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../lib/config';
import { synthesizeForTests } from '../support/synth';
import { baseId } from './template-queries';

// The README's "Personal data" table says where the stack keeps what of a person, and for how long.
// These tests hold it to the synthesized template, so neither can change without the other.

const { template } = synthesizeForTests();
const resources = Object.entries(
  (template as { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> })
    .Resources,
);
const ofType = (type: string) => resources.filter(([, resource]) => resource.Type === type);

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(
  readme.indexOf('## Personal data'),
  readme.indexOf('\n## ', readme.indexOf('## Personal data') + 1),
);
/** The table's rows: the resource each names (its logical id, without CDK's hash) and what its "Kept" column says. */
const rows = new Map(
  section
    .split('\n')
    .filter((line) => /^\| `/.test(line))
    .map((line) => {
      const cells = line.split('|').map((cell) => cell.trim());
      return [/`([^`]+)`/.exec(cells[1] ?? '')?.[1] ?? '', cells[3] ?? ''] as const;
    }),
);
const keptFor = (id: string) => {
  const kept = rows.get(id);
  if (kept === undefined) throw new Error(`README's "Personal data" has no row for ${id}`);
  return kept;
};
const daysIn = (kept: string) => Number(/(\d+) days/.exec(kept)?.[1]);

describe(`the README's "Personal data" table`, () => {
  it('names every table, and says TTL exactly where the template has one, with the setting and its default', () => {
    const shape = configSchema.shape as Record<string, { parse(value: unknown): unknown }>;
    for (const [logicalId, table] of ofType('AWS::DynamoDB::Table')) {
      const kept = keptFor(baseId(logicalId));
      const ttl = table.Properties?.TimeToLiveSpecification as { Enabled?: boolean } | undefined;
      expect(kept.includes('by TTL'), `${logicalId}: ${kept}`).toBe(ttl?.Enabled === true);
      const setting = /`(\w+RetentionDays)` \(default (\d+)\)/.exec(kept);
      if (setting) expect(shape[setting[1] as string]?.parse(undefined), kept).toBe(Number(setting[2]));
    }
  });

  it('names every queue with its retention', () => {
    for (const [logicalId, queue] of ofType('AWS::SQS::Queue')) {
      const seconds = Number(queue.Properties?.MessageRetentionPeriod);
      expect(daysIn(keptFor(baseId(logicalId))) * 86_400, logicalId).toBe(seconds);
    }
  });

  it('gives every log group the stack causes a retention, as the table says', () => {
    const groups = ofType('AWS::Logs::LogGroup');
    const functions = ofType('AWS::Lambda::Function');
    // Each function writes to a log group of the stack's, none to one Lambda would create unkept.
    for (const [logicalId, fn] of functions) {
      const logging = fn.Properties?.LoggingConfig as { LogGroup?: { Ref?: string } } | undefined;
      expect(logging?.LogGroup?.Ref, logicalId).toEqual(expect.any(String));
    }
    for (const [logicalId, group] of groups) {
      const id = baseId(logicalId);
      const row = rows.has(id) ? id : '…Logs';
      expect(group.Properties?.RetentionInDays, logicalId).toBe(daysIn(keptFor(row)));
    }
    // API Gateway's execution logs go to the group it names for the stage: the stack declares it first.
    const execution = groups.find(([logicalId]) => baseId(logicalId) === 'ApiExecutionLogs')?.[1];
    expect(JSON.stringify(execution?.Properties?.LogGroupName)).toContain('API-Gateway-Execution-Logs_');
    expect(groups.length).toBe(functions.length + 2);
  });
});
