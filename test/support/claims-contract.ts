import { expect, it } from 'vitest';
import {
  type Claim,
  ClaimLostError,
  type DeliveryClaims,
  type DeliveryOutcome,
  type ProgressRecorder,
} from '../../lambdas/core/jobs/deliveries';

/** Two consumers of one store (the same data, one clock the test moves), and how to make a job. */
export interface ClaimsUnderTest {
  one: DeliveryClaims & ProgressRecorder;
  other: DeliveryClaims & ProgressRecorder;
  leaseMs: number;
  advance(ms: number): void;
  newJob(recipients: number): Promise<string>;
}

/** One recipient's claim. */
export const claimOne = async (store: DeliveryClaims, jobId: string, recipient: string): Promise<Claim> =>
  (await store.claim(jobId, [{ recipient, attempts: 1 }])).get(recipient) as Claim;

/** The token of a claim the caller holds (fails the test otherwise). */
export const tokenOf = (claim: Claim) => {
  if (claim.state !== 'claimed' && claim.state !== 'handedOver') throw new Error(`Not held: ${claim.state}`);
  return claim.token;
};

/** A `sent` outcome under a claim. */
export const sent = (
  recipient: string,
  claimToken: string,
  messageId: string | null = null,
): DeliveryOutcome => ({
  recipient,
  status: 'sent',
  cc: [],
  attempts: 1,
  claimToken,
  messageId,
});

/**
 * What every claims store promises the consumer (the port `DeliveryClaims` with `ProgressRecorder`),
 * run against the DynamoDB adapter on DynamoDB Local and against the unit tests' fake, so the fake
 * cannot drift from what production does.
 */
export function claimsContract(setup: () => ClaimsUnderTest): void {
  it('gives a recipient to one consumer at a time, until its lease lapses', async () => {
    const { one, other, leaseMs, advance, newJob } = setup();
    const jobId = await newJob(1);
    const first = await claimOne(one, jobId, 'a@example.org');
    expect(first.state).toBe('claimed');
    const meanwhile = await claimOne(other, jobId, 'a@example.org');
    expect(meanwhile).toMatchObject({ state: 'held' });
    // It says until when, so the message can come back just after.
    if (meanwhile.state === 'held')
      expect(meanwhile.leaseUntil).toBeGreaterThan(Date.now() + leaseMs - 5_000);

    advance(leaseMs + 1);
    const later = await claimOne(other, jobId, 'a@example.org');
    expect(later.state).toBe('claimed');
    // The first holder's recording counts nothing: its claim was taken over.
    expect(await one.record(jobId, [sent('a@example.org', tokenOf(first))])).toMatchObject({
      recorded: [],
      duplicates: 1,
    });
    expect(await other.record(jobId, [sent('a@example.org', tokenOf(later))])).toMatchObject({
      recorded: [expect.objectContaining({ recipient: 'a@example.org' })],
      duplicates: 0,
    });
    expect(await claimOne(one, jobId, 'a@example.org')).toEqual({ state: 'done' });
  });

  it('refuses to write a message id under a claim taken over, with ClaimLostError', async () => {
    const { one, other, leaseMs, advance, newJob } = setup();
    const jobId = await newJob(1);
    const first = await claimOne(one, jobId, 'b@example.org');
    advance(leaseMs + 1);
    await claimOne(other, jobId, 'b@example.org');
    const refused = await one
      .handOver(jobId, 'b@example.org', tokenOf(first), 'ses-late')
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ClaimLostError);
  });

  it('gives a handed-over claim to the next holder with its message id, to record, never to send', async () => {
    const { one, other, newJob } = setup();
    const jobId = await newJob(1);
    const claim = await claimOne(one, jobId, 'c@example.org');
    await one.handOver(jobId, 'c@example.org', tokenOf(claim), 'ses-id-1', { snapshot: 'snap-1' });
    // A release after the hand-over gives nothing back: the email left.
    await one.release(jobId, 'c@example.org', tokenOf(claim));

    const next = await claimOne(other, jobId, 'c@example.org');
    // With the snapshot its email was rendered from, for the outcome to name.
    expect(next).toMatchObject({ state: 'handedOver', messageId: 'ses-id-1', snapshot: 'snap-1' });
    const outcome = { ...sent('c@example.org', tokenOf(next), 'ses-id-1'), snapshot: 'snap-1' };
    expect(await other.record(jobId, [outcome])).toMatchObject({
      duplicates: 0,
    });
  });

  it('frees a released claim at once, and counts each outcome once', async () => {
    const { one, other, newJob } = setup();
    const jobId = await newJob(2);
    const first = await claimOne(one, jobId, 'd@example.org');
    await one.release(jobId, 'd@example.org', tokenOf(first));
    const again = await claimOne(other, jobId, 'd@example.org');
    expect(again.state).toBe('claimed');

    const outcome = sent('d@example.org', tokenOf(again));
    expect(await other.record(jobId, [outcome])).toMatchObject({ duplicates: 0 });
    // The same outcome delivered again (SQS delivers at least once) changes nothing.
    expect(await other.record(jobId, [outcome])).toMatchObject({ recorded: [], duplicates: 1 });
  });

  it('keeps the copies a claim handed over through a release and a lapsed lease, and gives them to the next claim', async () => {
    const { one, other, leaseMs, advance, newJob } = setup();
    const jobId = await newJob(1);
    const first = await claimOne(one, jobId, 'e@example.org');
    expect(first).toEqual({ state: 'claimed', token: expect.any(String), copies: {} });
    await one.handOver(jobId, 'e@example.org', tokenOf(first), 'ses-copy-1', { copyTo: 'board@example.org' });
    // Given back halfway (throttled): the copy that left stays written, and the next claim is free at once.
    await one.release(jobId, 'e@example.org', tokenOf(first));
    const second = await claimOne(other, jobId, 'e@example.org');
    expect(second).toEqual({
      state: 'claimed',
      token: expect.any(String),
      copies: { 'board@example.org': 'ses-copy-1' },
    });
    await other.handOver(jobId, 'e@example.org', tokenOf(second), 'ses-copy-2', {
      copyTo: 'boss@example.org',
    });
    // The second holder dies: once its lease lapses, a third claim sees both copies.
    advance(leaseMs + 1);
    const third = await claimOne(one, jobId, 'e@example.org');
    expect(third).toMatchObject({
      state: 'claimed',
      copies: { 'board@example.org': 'ses-copy-1', 'boss@example.org': 'ses-copy-2' },
    });
    // A late copy hand-over under a claim taken over is refused, as the recipient's own is.
    const late = await other
      .handOver(jobId, 'e@example.org', tokenOf(second), 'ses-late', { copyTo: 'x@example.org' })
      .catch((error: unknown) => error);
    expect(late).toBeInstanceOf(ClaimLostError);
    expect(await one.record(jobId, [sent('e@example.org', tokenOf(third), 'ses-own')])).toMatchObject({
      duplicates: 0,
    });
  });
}
