import { Annotations, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import {
  AttributeType,
  BillingMode,
  StreamViewType,
  Table,
  TableEncryption,
  type TableProps,
} from 'aws-cdk-lib/aws-dynamodb';
import { type IKey, Key } from 'aws-cdk-lib/aws-kms';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { INDEX } from '../../lambdas/core/bindings';

const string = (name: string) => ({ name, type: AttributeType.STRING });

/** The system's tables: on-demand billing and point-in-time recovery throughout. */
export class MailerData extends Construct {
  readonly nonprofits: Table;
  /**
   * One item per job: its owner, status and counters. Beside each job, for two days, the marks of
   * the stream batches whose outcomes were counted on it (`<job id>#counted#<part>`, see
   * `DynamoOutcomeCounts`), which DynamoDB's TTL removes.
   */
  readonly jobs: Table;
  /**
   * What a job sends (part 0) and its recipients, sorted, in chunks (parts 1…): recorded before the
   * job; removed by DynamoDB's TTL `ledgerRetentionDays` after the job's start.
   */
  readonly jobContents: Table;
  /**
   * One item per recipient: its outcome and SES's message id (with the claim of a recipient sent on
   * its own while it is sent), and one per chunk of ten recipients, its claim (`<job id>#chunks`). No
   * index: nothing reads deliveries but by job. Its stream (old and new images) feeds the jobs'
   * counters: an outcome is one write here, counted on its job from the stream. Each item is
   * removed by DynamoDB's TTL `ledgerRetentionDays` after its first write (a removal counts nothing).
   */
  readonly deliveries: Table;
  /**
   * What each batch's emails were rendered from (the nonprofits' names and addresses, a snapshot per
   * batch; and whole rendered emails stored before snapshots), when the deployment keeps them:
   * personal data, so apart from the ledger, removed by DynamoDB's TTL after the retention time.
   */
  readonly renderedEmails: Table | undefined;
  /** Addresses no job sends to (unsubscribed, bounced, complained, added by an operator), by lower-case address. */
  readonly suppressions: Table;
  /** Recipients each API key sent to per UTC day (its recipient quota), kept for a while after. */
  readonly usage: Table;
  /**
   * Events waiting to be published (core/events): each written in the transaction of its fact, put
   * on the bus from the table's stream, removed by TTL days later. Nothing here is kept for itself,
   * so unlike the other tables it goes with the stack.
   */
  readonly outbox: Table;
  /**
   * The audit trail (core/audit): one partition sorted by time, indexed by address and by action.
   * Functions may only add to it (`ProjectFunction.keepsAudit`); DynamoDB's TTL removes a record
   * after `auditRetentionDays`.
   */
  readonly audit: Table;
  /**
   * A person's requests about their data (core/people): each request, what its walk found, and
   * the hold on its address while it runs. Personal data, kept `PERSON_REQUEST_RETENTION_DAYS`
   * by TTL: long enough to read a result, not to keep a second copy of the ledger.
   */
  readonly personRequests: Table;
  /**
   * The address key (core/people/address-keys): what an erased address's key is made with, so the
   * address is known again where it comes back in and nowhere else. Generated at deploy, never in
   * the template, and never rotated: a new key would make every erased address unknown again.
   */
  readonly addressKey: Secret;
  /**
   * The owner's key for personal data: every table here, and the queues that carry addresses
   * (`EmailQueue`, `workQueue`), are encrypted with it.
   */
  readonly key: IKey;

  constructor(
    scope: Construct,
    id: string,
    { storeRenderedEmails, dataKeyArn }: { storeRenderedEmails: boolean; dataKeyArn?: string | undefined },
  ) {
    super(scope, id);
    if (dataKeyArn)
      Annotations.of(this).addWarning(
        "dataKeyArn: the stack cannot change your key's policy. It must let sns.amazonaws.com call kms:GenerateDataKey and kms:Decrypt, or SES bounces and complaints never reach their queue (and no address is suppressed for them).",
      );
    this.key = dataKeyArn
      ? Key.fromKeyArn(this, 'Key', dataKeyArn)
      : new Key(this, 'Key', {
          description: 'Encrypts the nonprofit-mailer tables and queues that hold email addresses',
          alias: `${Stack.of(this).stackName}-data`,
          enableKeyRotation: true,
          // The retained tables cannot be read without it.
          removalPolicy: RemovalPolicy.RETAIN,
        });
    this.nonprofits = this.table('Nonprofits', { partitionKey: string('email') });
    this.nonprofits.addGlobalSecondaryIndex({
      indexName: INDEX.nonprofitsByDomain,
      partitionKey: string('domain'),
      sortKey: string('email'),
    });

    this.jobs = this.table('Jobs', { partitionKey: string('job_id'), timeToLiveAttribute: 'expires_at' });
    this.jobs.addGlobalSecondaryIndex({
      indexName: INDEX.jobsByApiKey,
      partitionKey: string('api_key_id'),
      sortKey: string('created_at'),
    });
    this.jobs.addGlobalSecondaryIndex({
      indexName: INDEX.activeJobs,
      partitionKey: string('active'),
      sortKey: string('created_at'),
    });
    this.jobs.addGlobalSecondaryIndex({
      indexName: INDEX.scheduledJobs,
      partitionKey: string('scheduled'),
      sortKey: string('send_at'),
    });

    this.jobContents = this.table('JobContents', {
      partitionKey: string('job_id'),
      sortKey: { name: 'part', type: AttributeType.NUMBER },
      timeToLiveAttribute: 'expires_at',
    });

    this.deliveries = this.table('Deliveries', {
      partitionKey: string('job_id'),
      sortKey: string('recipient'),
      stream: StreamViewType.NEW_AND_OLD_IMAGES,
      timeToLiveAttribute: 'expires_at',
    });

    this.suppressions = this.table('Suppressions', { partitionKey: string('email') });
    this.suppressions.addGlobalSecondaryIndex({
      indexName: INDEX.suppressionsByReason,
      partitionKey: string('reason'),
      sortKey: string('email'),
    });

    this.usage = this.table('Usage', {
      partitionKey: string('api_key_id'),
      sortKey: string('day'),
      timeToLiveAttribute: 'expires_at',
    });

    this.outbox = this.table(
      'Outbox',
      {
        partitionKey: string('event_id'),
        timeToLiveAttribute: 'expires_at',
        stream: StreamViewType.NEW_IMAGE,
      },
      RemovalPolicy.DESTROY,
    );

    this.audit = this.table('Audit', {
      partitionKey: string('trail'),
      sortKey: string('entry'),
      timeToLiveAttribute: 'expires_at',
    });
    this.audit.addGlobalSecondaryIndex({
      indexName: INDEX.auditByEmail,
      partitionKey: string('email'),
      sortKey: string('entry'),
    });
    this.audit.addGlobalSecondaryIndex({
      indexName: INDEX.auditByAction,
      partitionKey: string('action'),
      sortKey: string('entry'),
    });

    this.personRequests = this.table('PersonRequests', {
      partitionKey: string('request_id'),
      sortKey: string('part'),
      timeToLiveAttribute: 'expires_at',
    });

    this.addressKey = new Secret(this, 'AddressKey', {
      description: "Keys erased addresses in nonprofit-mailer's tables (an HMAC key)",
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.addressKey).acknowledge({
      id: 'AwsSolutions::AwsSolutions-SMG4',
      reason:
        'Rotating it would make every erased address unknown again: a re-import or a cc of one would be mailed. It keys a hash and opens nothing.',
    });

    this.renderedEmails = storeRenderedEmails
      ? this.table('RenderedEmails', {
          partitionKey: string('job_id'),
          sortKey: string('recipient'),
          timeToLiveAttribute: 'expires_at',
        })
      : undefined;
  }

  private table(
    id: string,
    keys: Pick<TableProps, 'partitionKey' | 'sortKey' | 'timeToLiveAttribute' | 'stream'>,
    // The registry and the record of what was sent are the users' data: deleting the stack keeps them.
    removalPolicy: RemovalPolicy = RemovalPolicy.RETAIN,
  ): Table {
    return new Table(this, id, {
      ...keys,
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      removalPolicy,
      // A table the stack keeps cannot be deleted by a slip either (a console click, a changed template).
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
    });
  }
}
