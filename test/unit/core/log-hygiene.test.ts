import type { SQSEvent } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { logger } from '../../../lambdas/core/observability/telemetry';
import { makeSendEmails } from '../../../lambdas/worker/send-emails';
import { lambdaContext } from '../../support/api-events';
import { FakeDeliveries } from './fake-deliveries';

const JOB_ID = '7d1c2a44-9a55-4f4e-8a1e-6a1f1d3c2b10';
const TEMPLATE = 'Confidential offer for {name}: code 12345';

afterEach(() => vi.restoreAllMocks());

describe('logs', () => {
  it('never carry a template or a rendered body, even when recording fails', async () => {
    const deliveries = new FakeDeliveries({ jobs: { [JOB_ID]: 1 } });
    vi.spyOn(deliveries, 'record').mockImplementation(async (_, outcomes) => {
      throw new Error(`DynamoDB refused ${outcomes.length} items`);
    });
    const lines: string[] = [];
    for (const level of ['info', 'warn', 'error', 'debug'] as const) {
      vi.spyOn(logger, level).mockImplementation((...args: unknown[]) => {
        lines.push(JSON.stringify(args, (_, value) => (value instanceof Error ? value.message : value)));
      });
    }
    const handler = makeSendEmails({
      suppressions: { getMany: async () => new Map() },
      jobs: { sendingLook: async () => ({ cancelled: false, ended: false, run: 0 }) },
      contents: {
        content: async () => ({
          template: TEMPLATE,
          subject: 'Offer',
          cc: [],
          accepted_at: new Date().toISOString(),
        }),
      },
      nonprofits: {
        getMany: async (emails) =>
          new Map(
            emails.map((email) => [
              email,
              {
                email,
                domain: 'example.org',
                name: 'Acme Aid',
                address: 'A',
                created_at: '',
                updated_at: '',
              },
            ]),
          ),
      },
      transport: { name: 'record', send: async () => ({ messageId: null }) },
      deliveries,
      queue: { defer: async () => undefined, returnAfter: async () => undefined },
      settings: { maxRenderedBytes: 256 * 1024, defaultSubject: '(no subject)' },
      log: (level, message, detail) => logger[level === 'ERROR' ? 'error' : 'info'](message, detail ?? {}),
    });
    const event = {
      Records: [
        {
          messageId: 'm1',
          body: JSON.stringify({ job_id: JOB_ID, recipient: 'a@example.org' }),
          attributes: { ApproximateReceiveCount: '1' },
        },
      ],
    } as unknown as SQSEvent;

    const result = await handler(event, lambdaContext);

    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }]);
    expect(lines.join('\n')).toContain(JOB_ID);
    expect(lines.join('\n')).not.toContain('Confidential');
    expect(lines.join('\n')).not.toContain('12345');
  });
});
