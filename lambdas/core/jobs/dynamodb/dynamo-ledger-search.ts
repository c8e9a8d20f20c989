import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { scanSegmentStep } from '../../dynamo-paging';
import { mentions } from '../../people/erase-mentions';
import type { EmailOnRecord, Finding, LedgerSearch, SegmentPosition } from '../../people/person-requests';
import { type DeliveryFeedback, type DeliveryRecord, jobOfDeliveryPartition } from '../deliveries';
import type { JobContentStore } from '../job-store';

export interface DynamoLedgerSearchOptions {
  client: DynamoDBDocumentClient;
  deliveriesTable: string;
  /** Where each job's subject is read (once per job a step meets). */
  contents: Pick<JobContentStore, 'subject'>;
  /** Items a Scan page reads (unset: DynamoDB's 1 MB page); tests set it low to walk in many steps. */
  pageSize?: number | undefined;
}

/**
 * The ledger walked for one address: a parallel Scan segment of the deliveries table, filtered to
 * the items that name it, as recipient or as a cc copy. A Scan reads (and bills) every item of
 * its segment whatever the filter keeps; see BENCHMARKS.md for its cost per GB. What a page finds
 * is stored before the next page is read, so a step stops with its findings stored and its time
 * check counts the writes.
 */
export class DynamoLedgerSearch implements LedgerSearch {
  constructor(private readonly options: DynamoLedgerSearchOptions) {}

  async walk(
    email: string,
    position: SegmentPosition,
    timeLeft: () => boolean,
    store: (found: readonly Finding[]) => Promise<void>,
  ): Promise<{ next?: Record<string, unknown> | undefined }> {
    const subjects = new Map<string, Promise<string | null>>();
    const subjectOf = (jobId: string) => {
      let subject = subjects.get(jobId);
      if (!subject) {
        subject = this.options.contents.subject(jobId);
        subjects.set(jobId, subject);
      }
      return subject;
    };
    const next = await scanSegmentStep(
      this.options.client,
      {
        TableName: this.options.deliveriesTable,
        Limit: this.options.pageSize,
        // A cc copy is named by the keys of its maps (a path each); `cc` by its list.
        FilterExpression:
          'recipient = :email OR contains(cc, :email) OR attribute_exists(copy_ids.#address) OR attribute_exists(copy_errors.#address)',
        ExpressionAttributeNames: { '#address': email },
        ExpressionAttributeValues: { ':email': email },
      },
      position,
      timeLeft,
      async (items) => {
        const found: Finding[] = [];
        for (const item of items) {
          const record = item as unknown as DeliveryRecord;
          const jobId = jobOfDeliveryPartition(record.job_id);
          found.push(...emailsOf(record, jobId, await subjectOf(jobId), email));
        }
        if (found.length > 0) await store(found);
      },
    );
    return { next };
  }
}

/** A delivery's state as an export names it: its outcome, or `processing` while it has none. */
const statusOf = (record: DeliveryRecord) =>
  record.status === undefined || record.status === 'sending' || record.status === 'queued'
    ? 'processing'
    : record.status;

/** What one delivery item holds of the address: the email to it, a copy of it, or both. */
function emailsOf(record: DeliveryRecord, jobId: string, subject: string | null, email: string): Finding[] {
  const key = `${record.job_id}#${record.recipient}`;
  const sentAt = record.status === 'sent' ? (record.handed_over_at ?? record.processed_at ?? null) : null;
  const feedback = record.feedback ?? [];
  const findings: Finding[] = [];
  if (record.recipient === email) {
    findings.push({
      key,
      email: {
        job_id: jobId,
        role: 'recipient',
        subject,
        status: statusOf(record),
        sent_at: sentAt,
        message_id: record.message_id ?? null,
        // SES's reports and the recipient's own unsubscribe; a cc reader's unsubscribe, noted here
        // too, is theirs and names them.
        feedback: feedback
          .filter((entry) => entry.type !== 'unsubscribe' || !entry.detail.includes('@'))
          .map(feedbackOf),
      },
    });
  }
  const copyId = record.copy_ids?.[email];
  const copyError = record.copy_errors?.[email];
  if (copyId !== undefined || copyError !== undefined || record.cc?.includes(email)) {
    findings.push({
      key,
      email: {
        job_id: jobId,
        role: 'cc',
        subject,
        // No copy id and no refusal: the email went nowhere (suppressed, cancelled, failed) or is
        // still being sent, so neither did the copy.
        status:
          copyId !== undefined
            ? 'sent'
            : copyError !== undefined
              ? 'failed'
              : statusOf(record) === 'processing'
                ? 'processing'
                : 'not_sent',
        // Copies go out with the email: SES took them when it took the email.
        sent_at: copyId !== undefined ? (record.handed_over_at ?? record.processed_at ?? null) : null,
        message_id: copyId ?? null,
        // The reader's own unsubscribe from the copy (SES's reports are the recipient's).
        feedback: feedback
          .filter((entry) => entry.type === 'unsubscribe' && mentions(entry.detail, email))
          .map(feedbackOf),
      },
    });
  }
  return findings;
}

const feedbackOf = ({ type, at, detail }: DeliveryFeedback): EmailOnRecord['feedback'][number] => ({
  type,
  at,
  detail,
});
