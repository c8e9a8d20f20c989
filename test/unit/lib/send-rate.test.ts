import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { type MailerConfig, readConfig } from '../../../lib/config';
import { consumerScaling } from '../../../lib/send-rate';

/** The configuration as the stack reads it: CDK context through the real schema, strings coerced. */
const config = (context: Record<string, string>): MailerConfig =>
  readConfig(
    new App({
      context: { fromAddress: 'news@mailer.example', senderPostalAddress: '1 Main St', ...context },
    }).node,
  );

describe('consumerScaling', () => {
  it('keeps the configured concurrency and batch, unpaced, with the record transport', () => {
    const scaling = consumerScaling(
      config({
        transport: 'record',
        sesMaxSendRate: '1',
        consumerMaxConcurrency: '37',
        consumerBatchSize: '250',
      }),
    );
    expect(scaling).toEqual({ maxConcurrency: 37, batchSize: 250, ratePerEnvironment: undefined });
  });

  describe.each([
    { consumerMaxConcurrency: '10', consumerBatchSize: '10', consumerTimeoutSeconds: '30' },
    { consumerMaxConcurrency: '50', consumerBatchSize: '100', consumerTimeoutSeconds: '30' },
    { consumerMaxConcurrency: '2', consumerBatchSize: '10000', consumerTimeoutSeconds: '900' },
  ])('with the SES transport and %o', (limits) => {
    it.each([1, 14, 100, 10_000])('shares a maximum send rate of %d among the consumers', (rate) => {
      const settings = config({ transport: 'ses', sesMaxSendRate: String(rate), ...limits });

      const scaling = consumerScaling(settings);

      expect(scaling.maxConcurrency).toBeGreaterThanOrEqual(2);
      expect(scaling.maxConcurrency).toBeLessThanOrEqual(settings.consumerMaxConcurrency);
      expect(Number.isInteger(scaling.maxConcurrency)).toBe(true);
      const ratePerEnvironment = scaling.ratePerEnvironment ?? Number.NaN;
      // Together, the consumers use the whole rate and never more.
      expect(ratePerEnvironment * scaling.maxConcurrency).toBeCloseTo(rate, 9);
      expect(ratePerEnvironment * scaling.maxConcurrency).toBeLessThanOrEqual(rate);
      // A full batch fits in half the timeout at the environment's pace.
      expect(Number.isInteger(scaling.batchSize)).toBe(true);
      expect(scaling.batchSize).toBeGreaterThanOrEqual(1);
      expect(scaling.batchSize).toBeLessThanOrEqual(settings.consumerBatchSize);
      expect(scaling.batchSize / ratePerEnvironment).toBeLessThanOrEqual(settings.consumerTimeoutSeconds / 2);
    });
  });

  it('grows the concurrency with the rate, about ten sends a second each, within the configured maximum', () => {
    const concurrency = (rate: number) =>
      consumerScaling(
        config({ transport: 'ses', sesMaxSendRate: String(rate), consumerMaxConcurrency: '50' }),
      ).maxConcurrency;
    expect(concurrency(1)).toBe(2);
    expect(concurrency(14)).toBe(2);
    expect(concurrency(100)).toBe(10);
    expect(concurrency(10_000)).toBe(50);
  });

  it('sizes a batch in messages of ten recipients: what an environment sends in half its timeout', () => {
    // 100 a second over 10 consumers is 10 each: 15 s of a 30 s timeout is 150 emails, 15 messages (10 at most by default).
    expect(consumerScaling(config({ transport: 'ses', sesMaxSendRate: '100' })).batchSize).toBe(10);
    expect(consumerScaling(config({ transport: 'ses', sesMaxSendRate: '14' })).batchSize).toBe(10);
    // 1 a second over 2 consumers is half a send a second each: 7 emails in 15 s, less than a
    // message, so one message a batch (what does not fit in the timeout waits in the queue).
    expect(consumerScaling(config({ transport: 'ses', sesMaxSendRate: '1' })).batchSize).toBe(1);
  });
});
