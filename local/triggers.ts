import { setTimeout as sleep } from 'node:timers/promises';
import { scheduledEvent } from './event-sources';

/** How long stopping waits for scheduled runs under way. */
const STOP_GRACE_MS = 2_000;

import type { InvokeResult } from './functions';
import { type CfnTemplate, type IntrinsicResolver, referencedLogicalId, resourcesOfType } from './template';

/** What starts functions besides the API: event source mappings and scheduled rules, from the template. */

export interface EventSourceMappingModel {
  functionLogicalId: string;
  eventSourceArn: string;
  batchSize: number;
  batchingWindowMs: number;
  maxConcurrency: number;
  reportBatchItemFailures: boolean;
  /** Where a stream source starts reading (queues have none). */
  startingPosition: 'TRIM_HORIZON' | 'LATEST';
  /** The mapping's filter patterns: a record none matches never reaches the function. */
  filters: FilterPattern[];
}

/** An event filter pattern, in the subset read locally: fields whose value is one of a list, nested. */
export interface FilterPattern {
  [field: string]: FilterPattern | (string | number | boolean | null)[];
}

/** Whether a record matches a pattern: every field the pattern names has one of its values. */
export function matchesPattern(record: unknown, pattern: FilterPattern): boolean {
  return Object.entries(pattern).every(([field, wanted]) => {
    const value = (record as Record<string, unknown> | null | undefined)?.[field];
    if (Array.isArray(wanted)) return wanted.includes(value as string);
    return typeof value === 'object' && value !== null && matchesPattern(value, wanted);
  });
}

/** The patterns of a mapping's `FilterCriteria`; one this runtime cannot read stops the start, named. */
function filterPatterns(logicalId: string, criteria: unknown): FilterPattern[] {
  const filters = ((criteria as { Filters?: { Pattern?: unknown }[] } | undefined)?.Filters ?? []).map(
    (filter) => JSON.parse(String(filter.Pattern)) as unknown,
  );
  const readable = (pattern: unknown): boolean =>
    typeof pattern === 'object' &&
    pattern !== null &&
    Object.values(pattern).every((wanted) =>
      Array.isArray(wanted)
        ? wanted.every((value) => value === null || typeof value !== 'object')
        : readable(wanted),
    );
  for (const pattern of filters)
    if (!readable(pattern))
      throw new Error(
        `Event source mapping ${logicalId}: the filter ${JSON.stringify(pattern)} uses matching this local runtime does not run (only lists of values)`,
      );
  return filters as FilterPattern[];
}

/** Lambda's default concurrency for an SQS source is far higher; locally a few pollers are plenty. */
const DEFAULT_LOCAL_CONCURRENCY = 5;

export function readEventSourceMappings(
  template: CfnTemplate,
  resolver: IntrinsicResolver,
): EventSourceMappingModel[] {
  return resourcesOfType(template, 'AWS::Lambda::EventSourceMapping')
    .filter(([, resource]) => resource.Properties?.Enabled !== false)
    .map(([logicalId, resource]) => {
      const properties = resource.Properties ?? {};
      const functionLogicalId = referencedLogicalId(properties.FunctionName);
      if (!functionLogicalId)
        throw new Error(`Event source mapping ${logicalId} names no function of the template`);
      const scaling = properties.ScalingConfig as { MaximumConcurrency?: number } | undefined;
      return {
        functionLogicalId,
        eventSourceArn: resolver.resolveString(properties.EventSourceArn),
        batchSize: Number(properties.BatchSize ?? 10),
        batchingWindowMs: Number(properties.MaximumBatchingWindowInSeconds ?? 0) * 1000,
        maxConcurrency: Number(scaling?.MaximumConcurrency ?? DEFAULT_LOCAL_CONCURRENCY),
        reportBatchItemFailures: ((properties.FunctionResponseTypes ?? []) as string[]).includes(
          'ReportBatchItemFailures',
        ),
        startingPosition: properties.StartingPosition === 'LATEST' ? 'LATEST' : 'TRIM_HORIZON',
        filters: filterPatterns(logicalId, properties.FilterCriteria),
      };
    });
}

export interface ScheduleModel {
  ruleLogicalId: string;
  ruleArn: string;
  intervalMs: number;
  functionLogicalIds: string[];
}

const UNIT_MS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** `rate(5 minutes)` → milliseconds; cron expressions are not run locally. */
export function rateToMs(expression: string): number | undefined {
  const match = /^rate\((\d+)\s+(minute|hour|day)s?\)$/.exec(expression.trim());
  if (!match) return undefined;
  return Number(match[1]) * (UNIT_MS[match[2] as string] as number);
}

export function readSchedules(
  template: CfnTemplate,
  resolver: IntrinsicResolver,
  log: (line: string) => void,
): ScheduleModel[] {
  const schedules: ScheduleModel[] = [];
  for (const [logicalId, resource] of resourcesOfType(template, 'AWS::Events::Rule')) {
    const properties = resource.Properties ?? {};
    if (typeof properties.ScheduleExpression !== 'string' || properties.State === 'DISABLED') continue;
    const intervalMs = rateToMs(properties.ScheduleExpression);
    if (intervalMs === undefined) {
      log(
        `[scheduler] ${logicalId}: ${properties.ScheduleExpression} is not run locally (only rate() expressions are)`,
      );
      continue;
    }
    const targets = ((properties.Targets ?? []) as { Arn?: unknown }[])
      .map((target) => referencedLogicalId(target.Arn))
      .filter(
        (id): id is string => id !== undefined && template.Resources[id]?.Type === 'AWS::Lambda::Function',
      );
    schedules.push({
      ruleLogicalId: logicalId,
      ruleArn: resolver.arn(resource.Type, `rule/${logicalId}`),
      intervalMs,
      functionLogicalIds: targets,
    });
  }
  return schedules;
}

/**
 * Runs scheduled rules on their rate. Each also fires once at start: the runtime may have been down
 * through several ticks, and work they would have done (the sweeper's) is owed.
 */
export class Scheduler {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly schedules: ScheduleModel[],
    private readonly invoke: (functionLogicalId: string, event: unknown) => Promise<InvokeResult>,
    private readonly log: (line: string) => void,
  ) {}

  start(): void {
    for (const schedule of this.schedules) {
      this.fire(schedule);
      this.timers.push(setInterval(() => this.fire(schedule), schedule.intervalMs));
    }
  }

  /**
   * Stops the ticks and gives runs under way a moment to finish; one still running after that (a
   * starter waiting for a job's time) ends when its function is closed, as a stopped environment.
   */
  async stop(): Promise<void> {
    for (const timer of this.timers.splice(0)) clearInterval(timer);
    await Promise.race([Promise.allSettled([...this.running]), sleep(STOP_GRACE_MS)]);
  }

  private fire(schedule: ScheduleModel): void {
    for (const functionLogicalId of schedule.functionLogicalIds) {
      const run = this.invoke(functionLogicalId, scheduledEvent(schedule.ruleArn)).then((result) => {
        if (!result.ok)
          this.log(
            `[scheduler] ${schedule.ruleLogicalId} → ${functionLogicalId} failed: ${result.error.errorMessage}`,
          );
      });
      this.running.add(run);
      void run.finally(() => this.running.delete(run));
    }
  }
}
