import { describe, expect, it } from 'vitest';
import {
  deliveryPartition,
  deliveryPartitions,
  deliveryShards,
  jobOfDeliveryPartition,
  MAX_DELIVERY_SHARDS,
} from '../../../lambdas/core/jobs/deliveries';

const JOB = '5f0c6b2e-8d1a-4c3b-9e7f-0a1b2c3d4e5f';

describe("a job's deliveries spread over partition keys", () => {
  it('keeps a small job on its own id, and gives a large one a key per 500 recipients, at most ten', () => {
    expect(deliveryShards(1)).toBe(1);
    expect(deliveryShards(500)).toBe(1);
    expect(deliveryShards(501)).toBe(2);
    expect(deliveryShards(10_000)).toBe(MAX_DELIVERY_SHARDS);
    expect(deliveryPartition(JOB, 'a@example.org', 1)).toBe(JOB);
    expect(deliveryPartitions(JOB, 1)).toEqual([JOB]);
  });

  it('puts a recipient on the same key every time, and spreads many recipients evenly', () => {
    const counts = new Map<string, number>();
    for (let n = 0; n < 10_000; n++) {
      const partition = deliveryPartition(JOB, `member${n}@example.org`, 10);
      expect(deliveryPartition(JOB, `member${n}@example.org`, 10)).toBe(partition);
      counts.set(partition, (counts.get(partition) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(deliveryPartitions(JOB, 10).sort());
    // About a thousand each: none above 1,200 or below 800.
    for (const count of counts.values()) expect(Math.abs(count - 1_000)).toBeLessThan(200);
  });

  it('spreads even addresses that differ only in a few letters over 2, 4 and 8 keys', () => {
    for (const shards of [2, 4, 8]) {
      const counts = new Map<string, number>();
      const letters = ['a', 'i', 'q', 'y'];
      for (const first of letters)
        for (const second of letters)
          for (let n = 0; n < 250; n++) {
            const partition = deliveryPartition(JOB, `${first}${second}${n}@example.org`, shards);
            counts.set(partition, (counts.get(partition) ?? 0) + 1);
          }
      expect(counts.size).toBe(shards);
      const even = 4_000 / shards;
      for (const count of counts.values()) expect(Math.abs(count - even)).toBeLessThan(even * 0.2);
    }
  });

  it("reads the job back from any of its keys (a shard's, a chunk claim's, its own)", () => {
    expect(jobOfDeliveryPartition(`${JOB}#7`)).toBe(JOB);
    expect(jobOfDeliveryPartition(`${JOB}#chunks`)).toBe(JOB);
    expect(jobOfDeliveryPartition(JOB)).toBe(JOB);
  });
});
