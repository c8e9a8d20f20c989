import { describe, expect, it } from 'vitest';
import { LocalMetrics, readableLogLine } from '../../../local/metrics';

const emf = (values: Record<string, number | number[]>, units: Record<string, string>) =>
  JSON.stringify({
    _aws: {
      Timestamp: 0,
      CloudWatchMetrics: [
        {
          Namespace: 'NonprofitMailer',
          Dimensions: [['service']],
          Metrics: Object.entries(units).map(([Name, Unit]) => ({ Name, Unit })),
        },
      ],
    },
    service: 'nonprofit-mailer',
    ...values,
  });

describe('LocalMetrics', () => {
  it('sums counters and summarizes other units, in Prometheus text format', () => {
    const metrics = new LocalMetrics();
    expect(
      metrics.record(
        emf(
          { EmailsSent: 10, EmailLatency: [100, 300] },
          { EmailsSent: 'Count', EmailLatency: 'Milliseconds' },
        ),
      ),
    ).toBe(true);
    metrics.record(emf({ EmailsSent: 5 }, { EmailsSent: 'Count' }));

    expect(metrics.prometheus()).toBe(
      [
        '# TYPE nonprofit_mailer_email_latency_milliseconds summary',
        'nonprofit_mailer_email_latency_milliseconds_sum{service="nonprofit-mailer"} 400',
        'nonprofit_mailer_email_latency_milliseconds_count{service="nonprofit-mailer"} 2',
        '# TYPE nonprofit_mailer_emails_sent_total counter',
        'nonprofit_mailer_emails_sent_total{service="nonprofit-mailer"} 15',
        '',
      ].join('\n'),
    );
  });

  it('leaves ordinary log lines alone', () => {
    const metrics = new LocalMetrics();
    expect(metrics.record('{"level":"INFO","message":"hello"}')).toBe(false);
    expect(metrics.record('plain text mentioning "_aws"')).toBe(false);
    expect(metrics.prometheus()).toBe('\n');
  });
});

describe('readableLogLine', () => {
  it('shows level, message and the keys that matter, dropping the noise', () => {
    const line = JSON.stringify({
      level: 'INFO',
      message: 'Job accepted',
      timestamp: 't',
      service: 's',
      xray_trace_id: 'x',
      job_id: 'j-1',
      total_emails: 3,
    });
    expect(readableLogLine(line)).toBe('INFO  Job accepted job_id=j-1 total_emails=3');
    expect(readableLogLine('not json')).toBe('not json');
  });
});
