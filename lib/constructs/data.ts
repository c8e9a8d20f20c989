import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, type TableProps } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';

/** The index of nonprofits by email domain, which serves `GET /nonprofits?domain=`. */
export const NONPROFITS_DOMAIN_INDEX = 'by-domain';
/** A client's jobs, newest first: `GET /jobs`. */
export const JOBS_BY_API_KEY_INDEX = 'by-api-key';
/** Sparse: only jobs still running carry `active`; the sweeper reads this index alone. */
export const ACTIVE_JOBS_INDEX = 'active';
/** What was sent to one nonprofit, across jobs. */
export const DELIVERIES_BY_RECIPIENT_INDEX = 'by-recipient';

const string = (name: string) => ({ name, type: AttributeType.STRING });

/** The system's tables: on-demand billing and point-in-time recovery throughout. */
export class MailerData extends Construct {
  readonly nonprofits: Table;
  /** One item per job: its template, owner, status and counters. */
  readonly jobs: Table;
  /** What a job sends (part 0) and its recipients, sorted, in chunks (parts 1…): recorded before the job. */
  readonly jobContents: Table;
  /** One item per recipient processed: the rendered email and its outcome. */
  readonly deliveries: Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.nonprofits = this.table('Nonprofits', { partitionKey: string('email') });
    this.nonprofits.addGlobalSecondaryIndex({
      indexName: NONPROFITS_DOMAIN_INDEX,
      partitionKey: string('domain'),
      sortKey: string('email'),
    });

    this.jobs = this.table('Jobs', { partitionKey: string('job_id') });
    this.jobs.addGlobalSecondaryIndex({
      indexName: JOBS_BY_API_KEY_INDEX,
      partitionKey: string('api_key_id'),
      sortKey: string('created_at'),
    });
    this.jobs.addGlobalSecondaryIndex({
      indexName: ACTIVE_JOBS_INDEX,
      partitionKey: string('active'),
      sortKey: string('created_at'),
    });

    this.jobContents = this.table('JobContents', {
      partitionKey: string('job_id'),
      sortKey: { name: 'part', type: AttributeType.NUMBER },
    });

    this.deliveries = this.table('Deliveries', {
      partitionKey: string('job_id'),
      sortKey: string('recipient'),
    });
    this.deliveries.addGlobalSecondaryIndex({
      indexName: DELIVERIES_BY_RECIPIENT_INDEX,
      partitionKey: string('recipient'),
      sortKey: string('job_id'),
    });
  }

  private table(id: string, keys: Pick<TableProps, 'partitionKey' | 'sortKey'>): Table {
    return new Table(this, id, {
      ...keys,
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // The registry and the record of what was sent are the users' data: deleting the stack keeps them.
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
