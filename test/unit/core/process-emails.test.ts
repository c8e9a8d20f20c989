import { describe, expect, it, vi } from 'vitest';
import type { DeliveryOutcome, ProgressRecorder } from '../../../lambdas/core/jobs/deliveries';
import {
  processEmailBatch,
  type ReceivedMessage,
  recordDeadLetters,
} from '../../../lambdas/core/jobs/process-emails';
import type { Nonprofit } from '../../../lambdas/core/nonprofits/nonprofit';
import { RecordTransport } from '../../../lambdas/core/transport/transport';

const JOB_ID = '5d1c2a44-9a55-4f4e-8a1e-6a1f1d3c2b10';
const content = {
  template: 'Hi {name}',
  subject: 'To {email}',
  cc: [],
  accepted_at: '2026-11-27T10:00:00.000Z',
};
const now = () => new Date('2026-11-27T10:00:02.500Z');
const nonprofit = (email: string): Nonprofit => ({
  email,
  domain: 'example.org',
  name: email.split('@')[0] ?? '',
  address: 'A',
  created_at: '',
  updated_at: '',
});

function message(id: string, body: unknown, receiveCount = 1): ReceivedMessage {
  return { messageId: id, body: typeof body === 'string' ? body : JSON.stringify(body), receiveCount };
}

function deps(overrides: { record?: ProgressRecorder['record']; registered?: string[] } = {}) {
  const recorded: DeliveryOutcome[] = [];
  const record =
    overrides.record ??
    (async (_: string, outcomes: readonly DeliveryOutcome[]) => {
      recorded.push(...outcomes);
      return { recorded: [...outcomes], duplicates: 0, completed: true };
    });
  const registered = new Set(overrides.registered ?? ['a@example.org', 'b@example.org']);
  return {
    recorded,
    deps: {
      contents: { content: async (id: string) => (id === JOB_ID ? content : undefined) },
      nonprofits: {
        getMany: async (emails: readonly string[]) =>
          new Map(emails.filter((email) => registered.has(email)).map((email) => [email, nonprofit(email)])),
      },
      transport: new RecordTransport(),
      progress: { record },
      log: vi.fn(),
      now,
    },
  };
}

describe('processEmailBatch', () => {
  it('renders each email and records it with the receive count as attempts', async () => {
    const { deps: d, recorded } = deps();
    const result = await processEmailBatch(d, [
      message('1', { job_id: JOB_ID, recipient: 'a@example.org' }, 2),
    ]);
    expect(result).toEqual({
      retry: [],
      sent: 1,
      failed: { nonprofitDeleted: 0, rejected: 0, deadLetter: 0 },
      duplicates: 0,
      latenciesMs: [2500],
      completedJobs: [{ jobId: JOB_ID, durationSeconds: 2.5 }],
    });
    expect(recorded).toEqual([
      {
        recipient: 'a@example.org',
        status: 'sent',
        subject: 'To a@example.org',
        body: 'Hi a',
        cc: [],
        attempts: 2,
      },
    ]);
  });

  it('drops messages that can never succeed (not ours, or of a job that does not exist), logging them', async () => {
    const { deps: d, recorded } = deps();
    const result = await processEmailBatch(d, [
      message('1', 'not json'),
      message('2', { job_id: 'nope', recipient: 'a@example.org' }),
      message('3', { job_id: '00000000-0000-4000-8000-000000000000', recipient: 'a@example.org' }),
    ]);
    expect(result.retry).toEqual([]);
    expect(recorded).toEqual([]);
    expect(d.log).toHaveBeenCalledTimes(3);
  });

  it('returns the messages of a job whose outcomes could not be recorded, and only those', async () => {
    const { deps: d } = deps({
      record: async () => {
        throw new Error('throttled');
      },
    });
    const result = await processEmailBatch(d, [
      message('1', { job_id: JOB_ID, recipient: 'a@example.org' }),
      message('2', { job_id: JOB_ID, recipient: 'b@example.org' }),
      message('3', 'garbage'),
    ]);
    expect(result.retry).toEqual(['1', '2']);
  });

  it('returns a message whose transport failed transiently, recording the others', async () => {
    const { deps: d, recorded } = deps();
    const flaky = {
      name: 'flaky',
      send: async (email: { to: string }) => {
        if (email.to === 'b@example.org') throw new Error('timeout');
      },
    };
    const result = await processEmailBatch({ ...d, transport: flaky }, [
      message('1', { job_id: JOB_ID, recipient: 'a@example.org' }),
      message('2', { job_id: JOB_ID, recipient: 'b@example.org' }),
    ]);
    expect(result.retry).toEqual(['2']);
    expect(recorded.map((outcome) => outcome.recipient)).toEqual(['a@example.org']);
  });
});

describe('recordDeadLetters', () => {
  it('records each dead letter as failed with the number of receives', async () => {
    const { deps: d, recorded } = deps();
    const result = await recordDeadLetters(d, [
      message('1', { job_id: JOB_ID, recipient: 'a@example.org' }, 5),
    ]);
    expect(result.failed).toEqual({ nonprofitDeleted: 0, rejected: 0, deadLetter: 1 });
    expect(recorded[0]).toMatchObject({
      recipient: 'a@example.org',
      status: 'failed',
      attempts: 5,
      error: expect.stringContaining('dead-letter'),
    });
  });
});
