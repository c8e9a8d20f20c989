import { randomUUID } from 'node:crypto';
import {
  type ChunkClaim,
  type ChunkClaims,
  type Claim,
  ClaimLostError,
  type DeliveryClaims,
  type DeliveryOutcome,
  type DeliveryReader,
  type DeliveryRecord,
  type DeliveryStatus,
  type FailureReason,
  hasOutcome,
  JobGoneError,
  type ProgressRecorder,
  type RecordResult,
} from '../../../lambdas/core/jobs/deliveries';

interface StoredDelivery {
  /** Absent while a chunk's recipient has only its copies written. */
  status?: DeliveryStatus | undefined;
  claimToken?: string | undefined;
  leaseUntil?: number | undefined;
  messageId?: string | undefined;
  /** Each cc copy's message id, by address: kept through releases and new claims, as the table keeps them. */
  copyIds: Record<string, string>;
  copyErrors?: Record<string, string> | undefined;
  snapshot?: string | undefined;
  attempts: number;
  cc?: string[];
  error?: string;
  reason?: FailureReason | undefined;
  processedAt?: string;
}

export interface FakeDeliveriesOptions {
  /** Recipients each job has: recording the last ends the job; recording for a job not listed fails as DynamoDB's would. */
  jobs: Record<string, number>;
  leaseMs?: number;
  /** Milliseconds since the epoch: the clock that leases are written and compared with. */
  now?: () => number;
}

/**
 * DynamoDeliveries in memory, with the same conditions: a claim is written when the recipient is
 * free, or claimed under a lapsed (or released) lease with no message id, and hands back the copies
 * handed over before; a claim with a message id is taken over
 * (`handedOver`); a live one is `held`; one with an outcome is `done`. An outcome is written only
 * under its claim's token, once; anything else counts as a duplicate. Recipients are claimed one
 * after another, so the same recipient twice in one call finds its own first claim, as concurrent
 * conditional writes would.
 */
export class FakeDeliveries implements ProgressRecorder, DeliveryClaims, ChunkClaims, DeliveryReader {
  private readonly items = new Map<string, StoredDelivery>();
  private readonly chunks = new Map<string, { token?: string | undefined; leaseUntil: number }>();
  private readonly remaining = new Map<string, number>();
  private readonly leaseMs: number;
  private readonly now: () => number;

  constructor(options: FakeDeliveriesOptions) {
    for (const [jobId, total] of Object.entries(options.jobs)) this.remaining.set(jobId, total);
    this.leaseMs = options.leaseMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  /** A job created after the fake (as a test's `newJob` does), with its recipients. */
  addJob(jobId: string, total: number): void {
    this.remaining.set(jobId, total);
  }

  private key(jobId: string, recipient: string) {
    return `${jobId}\n${recipient}`;
  }

  async claim(
    jobId: string,
    recipients: readonly { recipient: string; attempts: number }[],
  ): Promise<Map<string, Claim>> {
    const claims: [string, Claim][] = [];
    for (const { recipient, attempts } of recipients) {
      const key = this.key(jobId, recipient);
      const item = this.items.get(key);
      const token = randomUUID();
      const now = this.now();
      const free =
        !item ||
        item.status === 'queued' ||
        (item.status === 'sending' && (item.leaseUntil ?? 0) < now && item.messageId === undefined);
      if (free) {
        const copyIds = item?.copyIds ?? {};
        this.items.set(key, {
          status: 'sending',
          claimToken: token,
          leaseUntil: now + this.leaseMs,
          attempts,
          copyIds,
        });
        claims.push([recipient, { state: 'claimed', token, copies: { ...copyIds } }]);
      } else if (item.status !== 'sending') {
        claims.push([recipient, { state: 'done' }]);
      } else if (item.messageId !== undefined) {
        item.claimToken = token;
        claims.push([
          recipient,
          {
            state: 'handedOver',
            token,
            messageId: item.messageId,
            ...(item.snapshot ? { snapshot: item.snapshot } : {}),
          },
        ]);
      } else {
        claims.push([recipient, { state: 'held', leaseUntil: item.leaseUntil ?? 0 }]);
      }
    }
    return new Map(claims);
  }

  async claimChunk(jobId: string, chunk: number, recipients: readonly string[]): Promise<ChunkClaim> {
    const key = this.key(`${jobId}#chunks`, String(chunk));
    const held = this.chunks.get(key);
    const now = this.now();
    if (held && held.leaseUntil >= now) return { state: 'held', leaseUntil: held.leaseUntil };
    const token = randomUUID();
    this.chunks.set(key, { token, leaseUntil: now + this.leaseMs });
    return { state: 'claimed', token, found: held ? await this.getMany(jobId, recipients) : undefined };
  }

  async releaseChunk(jobId: string, chunk: number, token: string): Promise<void> {
    const held = this.chunks.get(this.key(`${jobId}#chunks`, String(chunk)));
    if (held?.token === token) {
      held.token = undefined;
      held.leaseUntil = 0;
    }
  }

  async recordCopies(jobId: string, recipient: string, copies: Readonly<Record<string, string>>) {
    const key = this.key(jobId, recipient);
    const item = this.items.get(key);
    if (item?.status !== undefined) throw new ClaimLostError(jobId, recipient);
    this.items.set(key, { ...item, attempts: item?.attempts ?? 0, copyIds: { ...copies } });
  }

  async handOver(
    jobId: string,
    recipient: string,
    token: string,
    messageId: string,
    { copyTo, snapshot }: { copyTo?: string | undefined; snapshot?: string | undefined } = {},
  ): Promise<void> {
    const item = this.items.get(this.key(jobId, recipient));
    if (item?.claimToken !== token) throw new ClaimLostError(jobId, recipient);
    if (copyTo !== undefined) item.copyIds[copyTo] = messageId;
    else {
      item.messageId = messageId;
      if (snapshot) item.snapshot = snapshot;
    }
  }

  async release(jobId: string, recipient: string, token: string): Promise<void> {
    const item = this.items.get(this.key(jobId, recipient));
    if (item?.claimToken === token && item.messageId === undefined) {
      item.claimToken = undefined;
      item.leaseUntil = 0;
    }
  }

  async record(jobId: string, outcomes: readonly DeliveryOutcome[]): Promise<RecordResult> {
    const remaining = this.remaining.get(jobId);
    if (remaining === undefined) throw new JobGoneError(jobId);
    const unique = [...new Map(outcomes.map((outcome) => [outcome.recipient, outcome])).values()];
    // Every outcome is checked against its claim (a chunk's recipient: that it has none) before any is written.
    const recorded = unique.filter((outcome) => {
      const item = this.items.get(this.key(jobId, outcome.recipient));
      return outcome.chunk === undefined
        ? item?.claimToken === outcome.claimToken
        : item?.status === undefined;
    });
    if (recorded.length > remaining) throw new Error(`Job ${jobId} has fewer recipients left than recorded`);
    for (const outcome of recorded) {
      const claimed = this.items.get(this.key(jobId, outcome.recipient));
      this.items.set(this.key(jobId, outcome.recipient), {
        status: outcome.status,
        attempts: outcome.attempts,
        cc: outcome.cc,
        copyIds: claimed?.copyIds ?? {},
        ...(outcome.copyErrors ? { copyErrors: outcome.copyErrors } : {}),
        ...(outcome.snapshot
          ? { snapshot: outcome.snapshot }
          : claimed?.snapshot
            ? { snapshot: claimed.snapshot }
            : {}),
        processedAt: new Date(this.now()).toISOString(),
        ...(outcome.error === undefined ? {} : { error: outcome.error }),
        ...(outcome.reason === undefined ? {} : { reason: outcome.reason }),
        ...(outcome.messageId ? { messageId: outcome.messageId } : {}),
      });
    }
    this.remaining.set(jobId, remaining - recorded.length);
    return { recorded, duplicates: outcomes.length - recorded.length, failed: [] };
  }

  async getMany(jobId: string, recipients: readonly string[]): Promise<Map<string, DeliveryRecord>> {
    const found = new Map<string, DeliveryRecord>();
    for (const recipient of recipients) {
      const record = this.get(jobId, recipient);
      if (record) found.set(recipient, record);
    }
    return found;
  }

  async processedRecipients(jobId: string): Promise<Set<string>> {
    const prefix = this.key(jobId, '');
    return new Set(
      [...this.items]
        .filter(([key, item]) => key.startsWith(prefix) && hasOutcome(item))
        .map(([key]) => key.slice(prefix.length)),
    );
  }

  async recipientStates(jobId: string): Promise<Map<string, DeliveryStatus | undefined>> {
    const prefix = this.key(jobId, '');
    return new Map(
      [...this.items]
        .filter(([key]) => key.startsWith(prefix))
        .map(([key, item]) => [key.slice(prefix.length), item.status]),
    );
  }

  async failures(jobId: string): Promise<DeliveryRecord[]> {
    const prefix = this.key(jobId, '');
    return [...this.items.keys()]
      .filter((key) => key.startsWith(prefix))
      .map((key) => this.get(jobId, key.slice(prefix.length)))
      .filter((record): record is DeliveryRecord => record?.status === 'failed');
  }

  /** The delivery item as DynamoDeliveries would store it (claim fields aside), or undefined. */
  get(jobId: string, recipient: string): DeliveryRecord | undefined {
    const item = this.items.get(this.key(jobId, recipient));
    if (!item) return undefined;
    return {
      job_id: jobId,
      recipient,
      status: item.status,
      attempts: item.attempts,
      ...(item.cc ? { cc: item.cc } : {}),
      ...(item.error === undefined ? {} : { error: item.error }),
      ...(item.reason === undefined ? {} : { failure_reason: item.reason }),
      ...(item.messageId === undefined ? {} : { message_id: item.messageId }),
      copy_ids: { ...item.copyIds },
      ...(item.copyErrors ? { copy_errors: item.copyErrors } : {}),
      ...(item.snapshot ? { snapshot: item.snapshot } : {}),
      ...(item.processedAt ? { processed_at: item.processedAt } : {}),
    };
  }

  /** Whether the recipient may be claimed at once: never claimed, or its claim given back (released). */
  isFree(jobId: string, recipient: string): boolean {
    const item = this.items.get(this.key(jobId, recipient));
    return (
      !item ||
      (item.status === 'sending' && item.claimToken === undefined && (item.leaseUntil ?? 0) < this.now())
    );
  }

  /** What a retry does to a recipient: back to `queued`, no outcome, counted in `remaining` again. */
  async requeue(jobId: string, recipient: string): Promise<void> {
    const item = this.items.get(this.key(jobId, recipient));
    if (!item) throw new Error(`${recipient} has no delivery to requeue`);
    item.status = 'queued';
    this.remaining.set(jobId, (this.remaining.get(jobId) ?? 0) + 1);
  }

  /** Recipients of a job not yet recorded. */
  left(jobId: string): number | undefined {
    return this.remaining.get(jobId);
  }
}
