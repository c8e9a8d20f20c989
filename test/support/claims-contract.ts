import { expect, it } from 'vitest';
import {
  type ChunkClaim,
  type ChunkClaims,
  type Claim,
  ClaimLostError,
  type DeliveryClaims,
  type DeliveryOutcome,
  type ProgressRecorder,
} from '../../lambdas/core/jobs/deliveries';

/** Two consumers of one store (the same data, one clock the test moves), and how to make a job. */
export interface ClaimsUnderTest {
  one: DeliveryClaims & ChunkClaims & ProgressRecorder;
  other: DeliveryClaims & ChunkClaims & ProgressRecorder;
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

/** The token of a chunk claim the caller holds (fails the test otherwise). */
export const chunkToken = (claim: ChunkClaim) => {
  if (claim.state !== 'claimed') throw new Error(`Not held: ${claim.state}`);
  return claim.token;
};

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

  it('gives a chunk to one consumer at a time; a takeover after the lease reads what the holder recorded', async () => {
    const { one, other, leaseMs, advance, newJob } = setup();
    const jobId = await newJob(3);
    const people = ['p@example.org', 'q@example.org', 'r@example.org'];
    const first = await one.claimChunk(jobId, 7, people);
    // Never claimed before: nothing to read.
    expect(first).toMatchObject({ state: 'claimed', found: undefined });
    const held = await other.claimChunk(jobId, 7, people);
    expect(held.state).toBe('held');
    // Another chunk of the same job is free.
    expect((await other.claimChunk(jobId, 8, ['s@example.org'])).state).toBe('claimed');

    await one.recordCopies(jobId, 'q@example.org', { 'board@example.org': 'ses-copy-q' });
    const recorded = await one.record(jobId, [
      { ...sent('p@example.org', chunkToken(first), 'ses-p'), chunk: 7 },
    ]);
    expect(recorded.recorded).toHaveLength(1);

    advance(leaseMs + 1);
    const takeover = await other.claimChunk(jobId, 7, people);
    if (takeover.state !== 'claimed') throw new Error('expected the chunk');
    expect(takeover.found?.get('p@example.org')).toMatchObject({ status: 'sent', message_id: 'ses-p' });
    expect(takeover.found?.get('q@example.org')).toMatchObject({
      copy_ids: { 'board@example.org': 'ses-copy-q' },
    });
    expect(takeover.found?.get('q@example.org')?.status).toBeUndefined();
    expect(takeover.found?.has('r@example.org')).toBe(false);
  });

  it('frees a released chunk at once, and only for the release of its holder', async () => {
    const { one, other, newJob } = setup();
    const jobId = await newJob(1);
    const claim = await one.claimChunk(jobId, 0, ['t@example.org']);
    await other.releaseChunk(jobId, 0, 'not-the-token');
    expect((await other.claimChunk(jobId, 0, ['t@example.org'])).state).toBe('held');
    await one.releaseChunk(jobId, 0, chunkToken(claim));
    const next = await other.claimChunk(jobId, 0, ['t@example.org']);
    // Claimed before: what it holds is read (nothing yet).
    expect(next).toMatchObject({ state: 'claimed', found: new Map() });
  });

  it("records a chunk recipient's outcome once, and never over a recipient claimed on its own", async () => {
    const { one, other, newJob } = setup();
    const jobId = await newJob(2);
    const chunk = await one.claimChunk(jobId, 0, ['u@example.org', 'v@example.org']);
    const outcome = { ...sent('u@example.org', chunkToken(chunk), 'ses-u'), chunk: 0 };
    expect((await one.record(jobId, [outcome])).recorded).toHaveLength(1);
    // A second consumer's outcome for the same recipient (it sent it too) changes nothing.
    expect(await other.record(jobId, [{ ...outcome, messageId: 'ses-u-2' }])).toMatchObject({
      recorded: [],
      duplicates: 1,
    });
    await expect(one.recordCopies(jobId, 'u@example.org', { 'x@example.org': 'ses-x' })).rejects.toThrow(
      ClaimLostError,
    );
    // v is claimed on its own (a retry's message): the chunk's outcome for it is refused.
    const alone = await claimOne(other, jobId, 'v@example.org');
    expect(alone.state).toBe('claimed');
    expect(
      await one.record(jobId, [{ ...sent('v@example.org', chunkToken(chunk)), chunk: 0 }]),
    ).toMatchObject({ recorded: [], duplicates: 1 });
    expect((await other.record(jobId, [sent('v@example.org', tokenOf(alone))])).recorded).toHaveLength(1);
  });

  it('leaves a chunk recipient whose copies are out to its chunk: a message of its own finds it done', async () => {
    const { one, other, newJob } = setup();
    const jobId = await newJob(1);
    await one.claimChunk(jobId, 0, ['w@example.org']);
    await one.recordCopies(jobId, 'w@example.org', { 'board@example.org': 'ses-copy-w' });
    expect(await claimOne(other, jobId, 'w@example.org')).toEqual({ state: 'done' });
  });
}
