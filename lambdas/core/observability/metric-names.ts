/**
 * The custom metrics the functions emit, in one namespace with `service` as their only dimension
 * (never a job id, an email or a key: each would be a new metric, billed and unbounded). The
 * dashboard and alarms in `lib/` read these same names, so a renamed metric cannot leave a widget
 * watching nothing.
 */
export const METRICS_NAMESPACE = 'NonprofitMailer';
export const SERVICE_NAME = 'nonprofit-mailer';

export const METRIC = {
  jobsAccepted: 'JobsAccepted',
  recipientsAccepted: 'RecipientsAccepted',
  emailsSent: 'EmailsSent',
  /** Not sent: the address is on the suppression list (unsubscribed, bounced, complained, manual). */
  emailsSuppressed: 'EmailsSuppressed',
  /** Not sent: the job was cancelled before the email's turn came. */
  emailsCancelled: 'EmailsCancelled',
  /** Recipients a retry of a job's failures enqueued again. */
  recipientsRetried: 'RecipientsRetried',
  /** Failed because the nonprofit was deleted before a recipient queued without its values was sent. */
  emailsFailedNonprofitDeleted: 'EmailsFailedNonprofitDeleted',
  /** Failed because the transport refused the email for good. */
  emailsFailedRejected: 'EmailsFailedRejected',
  /** Failed because the rendered email was over the size limit (stored values longer than checked at submit). */
  emailsFailedTooLarge: 'EmailsFailedTooLarge',
  /** Failed because every attempt failed and the message reached the dead-letter queue. */
  emailsFailedDeadLetter: 'EmailsFailedDeadLetter',
  /** Messages returned to the queue for another attempt (transient failures). */
  emailsRetried: 'EmailsRetried',
  /** Emails put back in the queue to wait: the transport was throttled or paused, or the invocation's time ran short. */
  emailsDeferred: 'EmailsDeferred',
  /** Batches that found sending paused for the account or configuration set (nothing can be sent). */
  sendingPaused: 'SendingPaused',
  /** Outcomes that were already recorded (a message delivered again): they changed nothing. */
  duplicateDeliveries: 'DuplicateDeliveries',
  /** Milliseconds from the job's acceptance to an email's outcome being recorded. */
  emailLatency: 'EmailLatency',
  /** Outcomes the deliveries table's stream added to their jobs' counters. */
  outcomesCounted: 'OutcomesCounted',
  /** Outcomes the counter found more of than their job had recipients left (counted before): never expected. */
  outcomesNotCounted: 'OutcomesNotCounted',
  /** Seconds from a job's acceptance to its completion. */
  jobDuration: 'JobDuration',
  /** Addresses SES reported bounced for good (each is suppressed). */
  emailsBounced: 'EmailsBounced',
  /** Addresses SES reported bounced for now (a full mailbox): counted, not suppressed. */
  emailsBouncedTransient: 'EmailsBouncedTransient',
  /** Addresses whose owner marked an email as spam (each is suppressed). */
  emailsComplained: 'EmailsComplained',
  /** The reputation guard turned sending off (its window's bounce or complaint rate reached a threshold). */
  sendingPausedByGuard: 'SendingPausedByGuard',
  /** Events the publisher put on the bus (each fact once; a rare second put of one is counted again). */
  eventsPublished: 'EventsPublished',
  /** Events the bus refused for good (a malformed detail): dropped, and alarmed. */
  eventsRefused: 'EventsRefused',
  /** Scheduled jobs whose time came: started and enqueued. */
  scheduledJobsStarted: 'ScheduledJobsStarted',
  sweeperReenqueued: 'SweeperReenqueued',
  deadLetters: 'DeadLetters',
} as const;
