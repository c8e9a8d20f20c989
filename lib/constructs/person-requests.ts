import { Duration } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { AUDIT_REWRITABLE } from '../../lambdas/core/audit/audit';
import { INDEX, QUEUE, TABLE } from '../../lambdas/core/bindings';
import { LEDGER_SEGMENTS } from '../../lambdas/core/people/person-requests';
import { SETTING } from '../../lambdas/core/settings';
import type { MailerConfig } from '../config';
import type { MailerApi } from './api';
import type { MailerData } from './data';
import { consumeQueue } from './email-jobs';
import { ProjectFunction } from './project-function';
import { workQueue } from './queue';

export interface PersonRequestsProps {
  api: MailerApi;
  data: MailerData;
  config: MailerConfig;
}

/** A walk step's time: its reads stop `STEP_MARGIN_MS` before it, and the rest goes on in a new message. */
const STEP_TIMEOUT = Duration.seconds(60);
/** Tries of one step before it moves to the dead-letter queue (an alarm watches it). */
const MAX_RECEIVES = 5;

/**
 * A person's data on request (GDPR Art. 15): `POST /people/{email}/export` records a request and
 * queues its start, a worker walks the ledger in `LEDGER_SEGMENTS` parallel Scan segments, one
 * queued step at a time, and `GET /people/requests/{id}` reads its progress and result. Nothing
 * here is on the send path. Each function gets exactly the actions its code calls.
 */
export class PersonRequests extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly worker: ProjectFunction;
  readonly functions: ProjectFunction[];

  constructor(scope: Construct, id: string, { api, data, config }: PersonRequestsProps) {
    super(scope, id);
    ({ queue: this.queue, deadLetterQueue: this.deadLetterQueue } = workQueue(
      this,
      { queue: 'Steps', deadLetters: 'DeadLetters' },
      {
        consumerTimeout: STEP_TIMEOUT,
        retention: Duration.days(4),
        maxReceiveCount: MAX_RECEIVES,
        deadLetterReason:
          'This is the dead-letter queue of person request steps: an alarm watches it, and an operator redrives a step once its cause is fixed.',
        encryptionKey: data.key,
      },
    ));

    this.worker = new ProjectFunction(this, 'Worker', {
      entry: 'worker/person-requests.ts',
      description: "Walks the ledger for a person's data request, a segment at a time",
      timeout: STEP_TIMEOUT,
    })
      // Its own requests and findings; an erasure walks it too, and deletes the person's exports.
      .bindTable(TABLE.personRequests, data.personRequests, [
        'dynamodb:GetItem',
        'dynamodb:UpdateItem',
        'dynamodb:BatchWriteItem',
        'dynamodb:DeleteItem',
        'dynamodb:Scan',
        'dynamodb:Query',
      ])
      // An export reads the ledger; an erasure moves the person's entries to their key (a delete
      // and a put in one transaction) and rewrites, where still as read, those that name them
      // (read again when changed since).
      .bindTable(TABLE.deliveries, data.deliveries, [
        'dynamodb:Scan',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:DeleteItem',
      ])
      // Each job's subject and shard count, once per job a step meets; an erasure rewrites lists.
      .bindTable(TABLE.jobContents, data.jobContents, [
        'dynamodb:GetItem',
        'dynamodb:Scan',
        'dynamodb:UpdateItem',
      ])
      .bindTable(TABLE.nonprofits, data.nonprofits, ['dynamodb:GetItem'])
      // An export reads the record; an erasure rewrites another's note that names the person, and
      // its completion deletes the address's own record.
      .bindTable(TABLE.suppressions, data.suppressions, [
        'dynamodb:GetItem',
        'dynamodb:DeleteItem',
        'dynamodb:Scan',
        'dynamodb:UpdateItem',
      ])
      // An erasure waits out the jobs running when it starts, and those scheduled then that ran
      // during a walk.
      .bindTable(TABLE.jobs, data.jobs, ['dynamodb:GetItem'], {
        names: [INDEX.activeJobs, INDEX.scheduledJobs],
        actions: ['dynamodb:Query'],
      })
      // Events still waiting that name the person are dropped.
      .bindTable(TABLE.outbox, data.outbox, ['dynamodb:Scan', 'dynamodb:DeleteItem'])
      // The erasure's completion is recorded; the trail is walked for the address (see below).
      .keepsAudit(data.audit, config.auditRetentionDays)
      .bindTable(TABLE.audit, data.audit, ['dynamodb:Scan', 'dynamodb:GetItem'])
      .setting(SETTING.storeRenderedEmails, String(data.renderedEmails !== undefined))
      .setting(SETTING.erasureRecheckSeconds, String(config.erasureRecheckSeconds))
      .bindQueue(QUEUE.personRequests, this.queue, ['sqs:SendMessage'])
      .acknowledgeNoDeadLetterTarget('queue');
    if (data.renderedEmails)
      this.worker.bindTable(TABLE.renderedEmails, data.renderedEmails, [
        'dynamodb:Scan',
        'dynamodb:GetItem',
        'dynamodb:UpdateItem',
        'dynamodb:DeleteItem',
      ]);
    // The one change any function may make to an audit record: an erasure rewrites the address to
    // its key where the record names it. IAM holds it to those attributes (and the record's key).
    this.worker.addToRolePolicy(
      new PolicyStatement({
        actions: ['dynamodb:UpdateItem'],
        resources: [data.audit.tableArn],
        conditions: {
          'ForAllValues:StringEquals': { 'dynamodb:Attributes': ['trail', 'entry', ...AUDIT_REWRITABLE] },
          StringEqualsIfExists: { 'dynamodb:ReturnValues': ['NONE'] },
        },
      }),
    );
    // One step per invocation, as many at once as there are segments: a walk reads that many Scan
    // pages in parallel at most, whatever the size of the table.
    consumeQueue(
      this.worker,
      new SqsEventSource(this.queue, {
        batchSize: 1,
        maxConcurrency: Math.max(2, LEDGER_SEGMENTS),
        reportBatchItemFailures: true,
      }),
    );

    const requestExport = new ProjectFunction(this, 'RequestExport', {
      entry: 'api/request-export.ts',
      description: 'POST /people/{email}/export',
    })
      // The request and its hold in one transaction, on the condition that no erasure holds the
      // address; a held address's hold read; a request whose start could not be queued deleted.
      .bindTable(TABLE.personRequests, data.personRequests, [
        'dynamodb:PutItem',
        'dynamodb:ConditionCheckItem',
        'dynamodb:GetItem',
        'dynamodb:DeleteItem',
      ])
      .bindQueue(QUEUE.personRequests, this.queue, ['sqs:SendMessage'])
      // The key an erasure holds the address by: an export waits while one runs.
      .bindSecret(SETTING.addressKeySecretArn, data.addressKey)
      .acknowledgeNoDeadLetterTarget('api');
    api.addRoute('POST', '/people/{email}/export', requestExport);

    const requestErasure = new ProjectFunction(this, 'RequestErasure', {
      entry: 'api/request-erasure.ts',
      description: 'POST /people/{email}/erasure',
    })
      // The request and its hold, with the address suppressed (under it and its key), its registry
      // entry deleted and the acceptance recorded, in one transaction.
      .bindTable(TABLE.personRequests, data.personRequests, [
        'dynamodb:PutItem',
        'dynamodb:GetItem',
        'dynamodb:DeleteItem',
      ])
      .bindTable(TABLE.suppressions, data.suppressions, ['dynamodb:PutItem'])
      .bindTable(TABLE.nonprofits, data.nonprofits, ['dynamodb:DeleteItem'])
      .keepsAudit(data.audit, config.auditRetentionDays)
      .bindSecret(SETTING.addressKeySecretArn, data.addressKey)
      .bindQueue(QUEUE.personRequests, this.queue, ['sqs:SendMessage'])
      .acknowledgeNoDeadLetterTarget('api');
    api.addRoute('POST', '/people/{email}/erasure', requestErasure);

    const getRequest = new ProjectFunction(this, 'GetPersonRequest', {
      entry: 'api/get-person-request.ts',
      description: 'GET /people/requests/{request_id}',
    })
      .bindTable(TABLE.personRequests, data.personRequests, ['dynamodb:GetItem', 'dynamodb:Query'])
      .acknowledgeNoDeadLetterTarget('api');
    api.addRoute('GET', '/people/requests/{request_id}', getRequest);

    this.functions = [this.worker, requestExport, requestErasure, getRequest];
  }
}
