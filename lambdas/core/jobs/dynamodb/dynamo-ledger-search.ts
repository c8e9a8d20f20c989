import { type DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { EmailOnRecord, Finding, LedgerSearch, SegmentPosition } from '../../people/person-requests';
import type { DeliveryFeedback, DeliveryRecord } from '../deliveries';
import type { JobContentStore } from '../job-store';

export interface DynamoLedgerSearchOptions {
  client: DynamoDBDocumentClient;
  deliveriesTable: string;
  /** Where each job's subject is read (once per job a step meets). */
  contents: Pick<JobContentStore, 'content'>;
  /** Items a Scan page reads (unset: DynamoDB's 1 MB page); tests set it low to walk in many steps. */
  pageSize?: number | undefined;
}

/** The job a delivery item belongs to: its partition key is the job id, or `<job id>#<shard>`. */
const jobOf = (partitionKey: string) => partitionKey.split('#')[0] ?? partitionKey;

/**
 * The ledger walked for one address: a parallel Scan segment of the deliveries table, filtered to
 * the items that name it, as recipient or as a cc copy. A Scan reads (and bills) every item of
 * its segment whatever the filter keeps; see BENCHMARKS.md for its cost per GB.
 */
export class DynamoLedgerSearch implements LedgerSearch {
  constructor(private readonly options: DynamoLedgerSearchOptions) {}

  async walk(
    email: string,
    position: SegmentPosition,
    timeLeft: () => boolean,
  ): Promise<{ found: Finding[]; next?: Record<string, unknown> | undefined }> {
    const subjects = new Map<string, Promise<string | null>>();
    const subjectOf = (jobId: string) => {
      let subject = subjects.get(jobId);
      if (!subject) {
        subject = this.options.contents.content(jobId).then((content) => content?.subject ?? null);
        subjects.set(jobId, subject);
      }
      return subject;
    };
    const found: Finding[] = [];
    let after = position.after;
    do {
      const page = await this.options.client.send(
        new ScanCommand({
          TableName: this.options.deliveriesTable,
          Segment: position.segment,
          TotalSegments: position.segments,
          ExclusiveStartKey: after,
          Limit: this.options.pageSize,
          // A cc copy is named by the keys of its maps (a path each); `cc` by its list.
          FilterExpression:
            'recipient = :email OR contains(cc, :email) OR attribute_exists(copy_ids.#address) OR attribute_exists(copy_errors.#address)',
          ExpressionAttributeNames: { '#address': email },
          ExpressionAttributeValues: { ':email': email },
        }),
      );
      for (const item of page.Items ?? []) {
        const record = item as unknown as DeliveryRecord;
        const jobId = jobOf(record.job_id);
        const subject = await subjectOf(jobId);
        found.push(...emailsOf(record, jobId, subject, email));
      }
      after = page.LastEvaluatedKey;
    } while (after && timeLeft());
    return { found, next: after };
  }
}

/** What one delivery item holds of the address: the email to it, a copy of it, or both. */
function emailsOf(record: DeliveryRecord, jobId: string, subject: string | null, email: string): Finding[] {
  const key = `${record.job_id}#${record.recipient}`;
  const findings: Finding[] = [];
  if (record.recipient === email) {
    findings.push({
      key,
      email: {
        job_id: jobId,
        role: 'recipient',
        subject,
        status: record.status ?? 'processing',
        sent_at: record.status === 'sent' ? (record.handed_over_at ?? record.processed_at ?? null) : null,
        message_id: record.message_id ?? null,
        feedback: (record.feedback ?? []).map(feedbackOf),
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
        status:
          copyId !== undefined
            ? 'sent'
            : copyError !== undefined
              ? 'failed'
              : (record.status ?? 'processing'),
        sent_at: copyId !== undefined ? (record.handed_over_at ?? record.processed_at ?? null) : null,
        message_id: copyId ?? null,
        // Reports on the recipient's email are about the recipient; a cc copy's name its address.
        feedback: (record.feedback ?? []).filter((entry) => entry.detail.includes(email)).map(feedbackOf),
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
