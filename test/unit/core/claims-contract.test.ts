import { randomUUID } from 'node:crypto';
import { describe } from 'vitest';
import { claimsContract } from '../../support/claims-contract';
import { FakeDeliveries } from './fake-deliveries';

const LEASE_MS = 30_000;

describe('the claims contract, on the unit tests fake', () => {
  claimsContract(() => {
    let now = Date.now();
    const fake = new FakeDeliveries({ jobs: {}, leaseMs: LEASE_MS, now: () => now });
    return {
      // One store shared by both consumers, as one table is.
      one: fake,
      other: fake,
      leaseMs: LEASE_MS,
      advance: (ms) => {
        now += ms;
      },
      newJob: async (recipients) => {
        const jobId = randomUUID();
        fake.addJob(jobId, recipients);
        return jobId;
      },
    };
  });
});
