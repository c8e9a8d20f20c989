import { Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { MailerConfig } from './config';
import { MailerApi } from './constructs/api';
import { AuditRoutes } from './constructs/audit-routes';
import { MailerData } from './constructs/data';
import { EmailJobs } from './constructs/email-jobs';
import { MailerEvents } from './constructs/events';
import { MailerMonitoring } from './constructs/monitoring';
import { NonprofitsRoutes } from './constructs/nonprofits-routes';
import { PersonRequests } from './constructs/person-requests';
import { PublishedContract } from './constructs/published-contract';
import { EmailQueue } from './constructs/queue';
import { SenderIdentity } from './constructs/sender-identity';
import { SendingControls } from './constructs/sending-controls';
import { SesFeedback } from './constructs/ses-feedback';
import { SuppressionsRoutes } from './constructs/suppressions-routes';
import { Unsubscribe } from './constructs/unsubscribe';
import { ApiWebAcl } from './constructs/web-acl';

export interface MailerStackProps extends StackProps {
  config: MailerConfig;
}

/** The whole system: data and queue, the API and its routes, the email pipeline, and what watches it all. */
export class MailerStack extends Stack {
  readonly data: MailerData;
  readonly api: MailerApi;
  readonly queue: EmailQueue;
  readonly emailJobs: EmailJobs;
  readonly monitoring: MailerMonitoring;
  readonly events: MailerEvents;
  /** A person's data on request: exports (core/people). */
  readonly personRequests: PersonRequests;
  /** Bounces and complaints from SES: only when emails go through SES. */
  readonly sesFeedback: SesFeedback | undefined;
  /** The sending domain's SES identity, when the stack sets it up (`senderDomain`). */
  readonly senderIdentity: SenderIdentity | undefined;

  constructor(scope: Construct, id: string, props: MailerStackProps) {
    super(scope, id, props);
    this.data = new MailerData(this, 'Data', {
      storeRenderedEmails: props.config.storeRenderedEmails,
      dataKeyArn: props.config.dataKeyArn,
    });
    this.queue = new EmailQueue(this, 'Queue', {
      encryptionKey: this.data.key,
      consumerTimeout: Duration.seconds(props.config.consumerTimeoutSeconds),
      maxReceiveCount: props.config.maxReceiveCount,
    });
    this.events = new MailerEvents(this, 'Events', { data: this.data, config: props.config });
    this.api = new MailerApi(this, 'Api', { config: props.config });
    if (props.config.waf) new ApiWebAcl(this, 'Waf', { api: this.api, config: props.config });
    new NonprofitsRoutes(this, 'Nonprofits', { api: this.api, data: this.data, config: props.config });
    new SuppressionsRoutes(this, 'Suppressions', { api: this.api, data: this.data, config: props.config });
    new AuditRoutes(this, 'Audit', { api: this.api, data: this.data });
    this.personRequests = new PersonRequests(this, 'People', {
      api: this.api,
      data: this.data,
      config: props.config,
    });
    this.sesFeedback =
      props.config.transport === 'ses'
        ? new SesFeedback(this, 'SesFeedback', { data: this.data, config: props.config })
        : undefined;
    new SendingControls(this, 'SendingControls', {
      api: this.api,
      data: this.data,
      config: props.config,
      sesFeedback: this.sesFeedback,
    });
    this.senderIdentity = props.config.senderDomain
      ? new SenderIdentity(this, 'SenderIdentity', {
          domain: props.config.senderDomain,
          mailFromSubdomain: props.config.mailFromSubdomain,
          dmarcReportAddress: props.config.dmarcReportAddress,
          hostedZoneId: props.config.hostedZoneId,
          publishDmarc: props.config.publishDmarc,
        })
      : undefined;
    this.emailJobs = new EmailJobs(this, 'EmailJobs', {
      api: this.api,
      data: this.data,
      queue: this.queue,
      config: props.config,
      configurationSetName: this.sesFeedback?.configurationSetName,
    });
    const unsubscribe = new Unsubscribe(this, 'Unsubscribe', {
      api: this.api,
      data: this.data,
      config: props.config,
    });
    unsubscribe.enableLinks(this.emailJobs.consumer, props.config.unsubscribeMailto);
    new PublishedContract(this, 'Contract', { api: this.api });
    // Last: it watches every function the stack has.
    this.monitoring = new MailerMonitoring(this, 'Monitoring', {
      api: this.api,
      data: this.data,
      queue: this.queue,
      consumer: this.emailJobs.consumer,
      counter: this.emailJobs.counter,
      publisher: this.events.publisher,
      linkSecretRotation: unsubscribe.rotation,
      personRequests: this.personRequests,
      sesFeedback: this.sesFeedback,
      senderIdentity: this.senderIdentity?.identityName,
      config: props.config,
    });
  }
}
