/**
 * The metrics the functions print as CloudWatch embedded metric format lines, gathered locally and
 * shown in Prometheus text format (as the original API's /metrics was): counters for `Count` units,
 * summaries (count and sum) for the rest.
 */

interface Series {
  metric: string;
  unit: string;
  labels: Record<string, string>;
  count: number;
  sum: number;
}

interface EmfDirective {
  Namespace: string;
  Dimensions: string[][];
  Metrics: { Name: string; Unit?: string }[];
}

const snake = (name: string) =>
  name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^a-zA-Z0-9]+/g, '_')
    .toLowerCase();

const escapeLabel = (value: string) =>
  value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export class LocalMetrics {
  private readonly series = new Map<string, Series>();

  /** Takes a log line; returns whether it was a metrics line (and so not one to show as a log). */
  record(line: string): boolean {
    if (!line.includes('"_aws"')) return false;
    let document: Record<string, unknown>;
    try {
      document = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return false;
    }
    const directives = (document._aws as { CloudWatchMetrics?: EmfDirective[] } | undefined)
      ?.CloudWatchMetrics;
    if (!directives) return false;
    for (const directive of directives) {
      const dimensionNames = [...new Set(directive.Dimensions.flat())];
      const labels = Object.fromEntries(dimensionNames.map((name) => [name, String(document[name] ?? '')]));
      for (const { Name, Unit = 'None' } of directive.Metrics) {
        const raw = document[Name];
        const values = (Array.isArray(raw) ? raw : [raw]).map(Number).filter(Number.isFinite);
        const metric = `${snake(directive.Namespace)}_${snake(Name)}`;
        const key = `${metric}|${JSON.stringify(labels)}`;
        const entry = this.series.get(key) ?? { metric, unit: Unit, labels, count: 0, sum: 0 };
        entry.count += values.length;
        entry.sum += values.reduce((total, value) => total + value, 0);
        this.series.set(key, entry);
      }
    }
    return true;
  }

  /** Prometheus text exposition format. */
  prometheus(): string {
    const byMetric = new Map<string, Series[]>();
    for (const entry of this.series.values())
      byMetric.set(entry.metric, [...(byMetric.get(entry.metric) ?? []), entry]);
    const lines: string[] = [];
    for (const [metric, entries] of [...byMetric].sort(([a], [b]) => a.localeCompare(b))) {
      const counter = entries.every((entry) => entry.unit === 'Count');
      const labels = (entry: Series) =>
        `{${Object.entries(entry.labels)
          .map(([name, value]) => `${snake(name)}="${escapeLabel(value)}"`)
          .join(',')}}`;
      if (counter) {
        lines.push(`# TYPE ${metric}_total counter`);
        for (const entry of entries) lines.push(`${metric}_total${labels(entry)} ${entry.sum}`);
      } else {
        const unit = snake(entries[0]?.unit ?? 'none');
        lines.push(`# TYPE ${metric}_${unit} summary`);
        for (const entry of entries) {
          lines.push(`${metric}_${unit}_sum${labels(entry)} ${entry.sum}`);
          lines.push(`${metric}_${unit}_count${labels(entry)} ${entry.count}`);
        }
      }
    }
    return `${lines.join('\n')}\n`;
  }
}

const QUIET_LOG_KEYS = new Set([
  'level',
  'message',
  'timestamp',
  'service',
  'sampling_rate',
  'xray_trace_id',
  'function_arn',
  'function_memory_size',
  'function_name',
]);

/** A JSON log line made readable for a terminal; other lines pass unchanged. */
export function readableLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (typeof entry.message !== 'string') return line;
    const extras = Object.entries(entry)
      .filter(([key]) => !QUIET_LOG_KEYS.has(key))
      .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
    return [String(entry.level ?? 'INFO').padEnd(5), entry.message, ...extras].join(' ');
  } catch {
    return line;
  }
}
