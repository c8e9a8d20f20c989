import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterEach, expect } from 'vitest';
import { type PipelineOptions, startPipeline } from './pipeline';

// What the email pipeline's integration files share: a pipeline per test, stopped after it, and the
// invariants every scenario ends with.

export type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
export type Deliveries = Parameters<NonNullable<PipelineOptions['deliveries']>>[0];

/**
 * Registers the stop of each test's pipeline, and answers how a test starts one: its consumers
 * started at once, or (`start: false`) when the test has queued what it needs first.
 */
export function usePipelines(): (options?: PipelineOptions, when?: { start: boolean }) => Promise<Pipeline> {
  let pipeline: Pipeline | undefined;
  afterEach(async () => {
    await pipeline?.stop();
    pipeline = undefined;
  });
  return async (options = {}, { start } = { start: true }) => {
    pipeline = await startPipeline(options);
    if (start) pipeline.start();
    return pipeline;
  };
}

/** The invariants every scenario ends with: exact counts, one record per recipient, job completed. */
export async function expectExactlyOnce(
  p: Pipeline,
  jobId: string,
  recipients: string[],
  expected: { sent: number; failed: number; suppressed?: number },
) {
  const job = await p.waitForEnd(jobId);
  expect(job).toMatchObject({
    status: 'completed',
    total_emails: recipients.length,
    ...expected,
    remaining: 0,
  });
  expect(job.completed_at).toEqual(expect.any(String));
  expect(job.started_at).toEqual(expect.any(String));
  const recorded = await p.recorded(jobId, recipients);
  expect(recorded.size).toBe(recipients.length);
  expect((await p.deliveries.processedRecipients(jobId)).size).toBe(recipients.length);
  expect([...recorded.values()].filter((delivery) => delivery.status === 'sent')).toHaveLength(expected.sent);
  return recorded;
}

/** The real claims, with recording replaced: to inject faults where outcomes are written. */
export const recordingWith =
  (record: (real: Deliveries) => Deliveries['record']): NonNullable<PipelineOptions['deliveries']> =>
  (real) => ({ ...passThrough(real), record: record(real) });

/** Every call of the real deliveries, as they are: a test replaces the ones it injects faults into. */
export const passThrough = (real: Deliveries): Deliveries => ({
  claim: (...args) => real.claim(...args),
  handOver: (...args) => real.handOver(...args),
  release: (...args) => real.release(...args),
  claimChunk: (...args) => real.claimChunk(...args),
  releaseChunk: (...args) => real.releaseChunk(...args),
  recordCopies: (...args) => real.recordCopies(...args),
  record: (...args) => real.record(...args),
});

/** What the local SES received: exactly one email per recipient recorded sent, none for the others. */
export async function expectMailedOnce(
  p: Pipeline,
  recipients: string[],
  sent: Set<string> = new Set(recipients),
) {
  const received = await p.emailsReceived(recipients);
  const wrong = [...received].filter(([recipient, count]) => count !== (sent.has(recipient) ? 1 : 0));
  expect(wrong).toEqual([]);
}
