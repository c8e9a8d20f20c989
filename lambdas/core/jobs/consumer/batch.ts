import type { NonprofitRepository } from '../../nonprofits/repository';
import type { EmailQueue, QueuedNonprofit } from '../../queue/email-queue';
import type { RecipientQuota } from '../../quota/recipient-quota';
import type { SuppressionList } from '../../suppressions/repository';
import type { SigningSecret } from '../../suppressions/unsubscribe-token';
import type { SendPacer } from '../../transport/send-pacer';
import type { EmailTransport } from '../../transport/transport';
import type { ChunkClaims, DeliveryClaims, FailureReason, ProgressRecorder } from '../deliveries';
import type { JobContentStore, JobStore } from '../job-store';
import type { RenderSettings } from '../render-email';
import type { RenderedEmailStore } from '../rendered-emails';

// The consumer's vocabulary: what it receives, what it depends on, what one invocation shares and
// what it answers. Each step of the consumer has a file of its own beside this one.

/** A message as the event source hands it over. */
export interface ReceivedMessage {
  messageId: string;
  body: string;
  /** ApproximateReceiveCount: 1 on the first receive. */
  receiveCount: number;
  /** What SQS needs to change the message's visibility. */
  receiptHandle?: string;
}

export type Log = (
  level: 'INFO' | 'WARN' | 'ERROR',
  message: string,
  detail?: Record<string, unknown>,
) => void;

export interface ProcessEmailsDependencies {
  contents: Pick<JobContentStore, 'content'>;
  /**
   * Looked at once per job per batch, before its recipients are claimed (a job that ended takes no
   * more), and again for its cancel before an email is sent when that look is over a second old.
   */
  jobs: Pick<JobStore, 'sendingLook'>;
  nonprofits: Pick<NonprofitRepository, 'getMany'>;
  transport: EmailTransport;
  deliveries: ProgressRecorder & DeliveryClaims & ChunkClaims;
  /** Addresses that get no email: read for every batch, so an unsubscribe counts from the next one. */
  suppressions: Pick<SuppressionList, 'getMany'>;
  /** Gives each email its one-click unsubscribe link, signed with the deployment's secret. */
  unsubscribe?: UnsubscribeLinks | undefined;
  /** Where an email waits when the transport asks to wait, the invocation's time runs out, or another consumer holds it. */
  queue: Pick<EmailQueue, 'defer' | 'returnAfter'>;
  /** Keeps what each batch's emails were rendered from, when the deployment keeps them. */
  rendered?: Pick<RenderedEmailStore, 'putSnapshot'> | undefined;
  /** Gives back to its key's recipient quota each recipient a cancel kept from being sent. */
  quota?: Pick<RecipientQuota, 'refund'> | undefined;
  /** Holds this environment's share of the transport's send rate. */
  pacer?: SendPacer | undefined;
  settings: RenderSettings;
  /** Base waits, in seconds, before a throttled or paused email is tried again (tests shorten them). */
  waits?: { throttledSeconds: number; pausedSeconds: number };
  log?: Log;
  now?: () => Date;
}

export interface UnsubscribeLinks {
  secret: SigningSecret;
  /** The public `/unsubscribe` URL the token is appended to. */
  url: string;
  mailto?: string | undefined;
}

/** What a batch did: enough for the event source's answer and for the handler's metrics. */
export interface BatchResult {
  /** Messages to receive again later (transient failures); all others are done. */
  retry: string[];
  /** Recipients those messages carry (a chunk message carries up to ten). */
  retriedRecipients: number;
  sent: number;
  failed: Record<FailureReason, number>;
  /** Recipients recorded `suppressed`, not sent. */
  suppressed: number;
  /** Recipients recorded `cancelled`: their job was cancelled before they were sent. */
  cancelled: number;
  duplicates: number;
  /** Emails put back in the queue to wait (throttled, paused, out of time), not failed. */
  deferred: number;
  /** Whether the transport said sending is paused for the account or configuration set. */
  paused: boolean;
  /** Milliseconds from each newly recorded email's job acceptance to now. */
  latenciesMs: number[];
}

export const emptyResult = (): BatchResult => ({
  retry: [],
  retriedRecipients: 0,
  sent: 0,
  failed: { nonprofitDeleted: 0, rejected: 0, tooLarge: 0, deadLetter: 0 },
  suppressed: 0,
  cancelled: 0,
  duplicates: 0,
  deferred: 0,
  paused: false,
  latenciesMs: [],
});

/** What one invocation shares while it works through its batch. */
export interface BatchRun {
  deps: ProcessEmailsDependencies;
  log: Log;
  result: BatchResult;
  remainingMs: () => number;
  /** Time kept for recording: no email is started with less left. */
  marginMs: number;
  waits: NonNullable<ProcessEmailsDependencies['waits']>;
  /**
   * Set when sending must stop for this invocation: the transport is paused, time is short, or a
   * message id could not be written (DynamoDB is failing: each further email sent would be one
   * whose claim lapses without its id, and so one sent twice).
   */
  stop?: 'paused' | 'deadline' | 'unrecorded';
  /** Jobs a sender found cancelled: their other emails in this batch skip the pacer's wait. */
  cancelledJobs: Set<string>;
  /**
   * The last look at each job's cancel (a strongly consistent read) and when it was asked, shared by
   * the batch's senders: an email may start on a look at most `CANCEL_LOOK_MAX_AGE_MS` old.
   */
  cancelLooks: Map<string, { askedAt: number; cancelled: Promise<boolean> }>;
  /**
   * A chunk message's recipients that must wait, by the message: they go back to the queue together,
   * as one message of the chunk, once the batch's sending is over (see `returnWaitingChunks`).
   */
  waiting: Map<string, ChunkWait>;
}

/** What a chunk's waiting recipients need to go back to the queue. */
export interface ChunkWait {
  job: string;
  chunk: number;
  token: string;
  recipients: string[];
  /** The values the chunk carried of each waiting recipient, in the same order (see `QueuedNonprofit`). */
  nonprofits: (QueuedNonprofit | undefined)[];
  /** The longest wait any of them asked for, in seconds, and the deferrals the message carries on. */
  delaySeconds: number;
  deferrals: number;
  /** False when any of them may have been taken by the transport: the claim then lapses with its lease. */
  release: boolean;
}

/** Names each message to receive again once, and counts the recipients they carry. */
export function settleRetries(result: BatchResult, items: readonly { message: ReceivedMessage }[]): void {
  const retried = new Set(result.retry);
  result.retry = [...retried];
  result.retriedRecipients = items.filter(({ message }) => retried.has(message.messageId)).length;
}

export const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));
