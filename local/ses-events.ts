import { randomUUID } from 'node:crypto';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SentEmail } from './ses';
import {
  type CfnTemplate,
  type IntrinsicResolver,
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  resourcesOfType,
} from './template';

/**
 * SES's event publishing, locally: the template's configuration set event destinations, the SNS
 * topics they name and the SQS subscriptions of those topics, read from the template as CloudFormation
 * would create them. Emails sent to SES's mailbox simulator (`bounce@simulator.amazonses.com`,
 * `complaint@…`, `suppressionlist@…`, each also with a `+label`) produce the bounce or complaint
 * SES would report, a few seconds later, on every queue subscribed to the set's destination.
 */

/** The mailbox simulator's domain: SES never delivers there, and answers each address as its name says. */
export const SIMULATOR_DOMAIN = 'simulator.amazonses.com';

/** How long after the send the simulated report arrives (SES reports within seconds, after the sender recorded the email). */
const REPORT_DELAY_MS = 5_000;

interface Subscriber {
  queueUrl: string;
  raw: boolean;
  topicArn: string;
}

interface Destination {
  events: Set<string>;
  subscribers: Subscriber[];
}

type SesEvent = Record<string, unknown> & { eventType: 'Bounce' | 'Complaint' };

export class LocalEventPublishing {
  private readonly destinations = new Map<string, Destination[]>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly declaredSets: string[];

  constructor(
    template: CfnTemplate,
    resolver: IntrinsicResolver,
    private readonly options: {
      sqs: SQSClient;
      queues: readonly { arn: string; url: string }[];
      log: (line: string) => void;
    },
  ) {
    this.declaredSets = resourcesOfType(template, 'AWS::SES::ConfigurationSet').map(([logicalId]) =>
      resolver.ref(logicalId),
    );
    // A topic's Ref is its ARN.
    for (const [logicalId] of resourcesOfType(template, 'AWS::SNS::Topic')) {
      resolver.register(logicalId, { ref: resolver.arn('AWS::SNS::Topic', logicalId) });
    }
    const subscriptions = resourcesOfType(template, 'AWS::SNS::Subscription').map(([, resource]) => {
      const properties = resource.Properties ?? {};
      return {
        protocol: properties.Protocol,
        topicArn: resolver.resolveString(properties.TopicArn),
        endpoint: resolver.resolveString(properties.Endpoint),
        raw: properties.RawMessageDelivery === true || properties.RawMessageDelivery === 'true',
      };
    });
    for (const [, resource] of resourcesOfType(template, 'AWS::SES::ConfigurationSetEventDestination')) {
      const properties = resource.Properties ?? {};
      const destination = (properties.EventDestination ?? {}) as {
        Enabled?: boolean;
        MatchingEventTypes?: string[];
        SnsDestination?: { TopicARN?: unknown };
      };
      if (destination.Enabled === false || !destination.SnsDestination?.TopicARN) continue;
      const topicArn = resolver.resolveString(destination.SnsDestination.TopicARN);
      const subscribers = subscriptions
        .filter((subscription) => subscription.protocol === 'sqs' && subscription.topicArn === topicArn)
        .flatMap((subscription) => {
          const queue = options.queues.find((candidate) => candidate.arn === subscription.endpoint);
          return queue ? [{ queueUrl: queue.url, raw: subscription.raw, topicArn }] : [];
        });
      const set = resolver.resolveString(properties.ConfigurationSetName);
      this.destinations.set(set, [
        ...(this.destinations.get(set) ?? []),
        { events: new Set(destination.MatchingEventTypes ?? []), subscribers },
      ]);
    }
  }

  /** The configuration sets the template declares or sends events from: they exist, locally as in AWS. */
  configurationSets(): string[] {
    return [...new Set([...this.declaredSets, ...this.destinations.keys()])];
  }

  /** Every queue subscribed to a destination: where SES's events arrive. */
  queueUrls(): string[] {
    const urls = [...this.destinations.values()]
      .flat()
      .flatMap((destination) => destination.subscribers.map((subscriber) => subscriber.queueUrl));
    return [...new Set(urls)];
  }

  /** What SES would report of this email, published a few seconds after it was sent. */
  sent(email: SentEmail): void {
    const events = simulatedEvents(email);
    if (events.length === 0 || email.configurationSet === undefined) return;
    const destinations = this.destinations.get(email.configurationSet) ?? [];
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.publish(destinations, events);
    }, REPORT_DELAY_MS);
    this.timers.add(timer);
  }

  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private async publish(destinations: Destination[], events: SesEvent[]): Promise<void> {
    for (const event of events) {
      const type = event.eventType.toLowerCase();
      for (const destination of destinations.filter((candidate) => candidate.events.has(type))) {
        for (const subscriber of destination.subscribers) {
          const message = JSON.stringify(event);
          try {
            await this.options.sqs.send(
              new SendMessageCommand({
                QueueUrl: subscriber.queueUrl,
                MessageBody: subscriber.raw ? message : snsEnvelope(subscriber.topicArn, message),
              }),
            );
            this.options.log(`[ses] mailbox simulator: ${event.eventType} published`);
          } catch (error) {
            this.options.log(`[ses] could not publish a simulated ${event.eventType}: ${String(error)}`);
          }
        }
      }
    }
  }
}

/** The simulator's answer for each address of an email: what SES documents for it. */
export function simulatedEvents(email: SentEmail, now: Date = new Date()): SesEvent[] {
  const destination = [...email.to, ...email.cc, ...email.bcc];
  const byKind = (kind: string) =>
    destination.filter((address) => {
      const [local = '', domain = ''] = address.toLowerCase().split('@');
      return domain === SIMULATOR_DOMAIN && local.split('+')[0] === kind;
    });
  const mail = {
    timestamp: email.timestamp,
    source: email.from,
    sourceArn: `arn:aws:ses:${LOCAL_REGION}:${LOCAL_ACCOUNT}:identity/${email.from}`,
    sendingAccountId: LOCAL_ACCOUNT,
    messageId: email.messageId,
    destination,
    headersTruncated: false,
    headers: [],
    commonHeaders: { from: [email.from], to: email.to, messageId: email.messageId, subject: email.subject },
    tags: {
      ...(email.configurationSet ? { 'ses:configuration-set': [email.configurationSet] } : {}),
      'ses:source-ip': ['127.0.0.1'],
      'ses:caller-identity': ['local'],
      ...Object.fromEntries(Object.entries(email.tags).map(([name, value]) => [name, [value]])),
    },
  };
  const feedbackId = () => `${randomUUID()}-000000`;
  const timestamp = now.toISOString();
  const events: SesEvent[] = [];
  const bounce = (addresses: string[], subType: string, diagnosticCode: string) => {
    if (addresses.length === 0) return;
    events.push({
      eventType: 'Bounce',
      bounce: {
        bounceType: 'Permanent',
        bounceSubType: subType,
        bouncedRecipients: addresses.map((emailAddress) => ({
          emailAddress,
          action: 'failed',
          status: '5.1.1',
          diagnosticCode,
        })),
        timestamp,
        feedbackId: feedbackId(),
        reportingMTA: 'dsn; local.simulator.amazonses.com',
      },
      mail,
    });
  };
  bounce(byKind('bounce'), 'General', 'smtp; 550 5.1.1 user unknown');
  bounce(
    byKind('suppressionlist'),
    'OnAccountSuppressionList',
    'Amazon SES did not send the message to this address because it is on the suppression list for your account.',
  );
  const complained = byKind('complaint');
  if (complained.length > 0) {
    events.push({
      eventType: 'Complaint',
      complaint: {
        complainedRecipients: complained.map((emailAddress) => ({ emailAddress })),
        timestamp,
        feedbackId: feedbackId(),
        userAgent: 'nonprofit-mailer local mailbox simulator',
        complaintFeedbackType: 'abuse',
        arrivalDate: timestamp,
      },
      mail,
    });
  }
  return events;
}

/** An SNS notification as SQS receives it without raw message delivery. */
function snsEnvelope(topicArn: string, message: string): string {
  return JSON.stringify({
    Type: 'Notification',
    MessageId: randomUUID(),
    TopicArn: topicArn,
    Message: message,
    Timestamp: new Date().toISOString(),
    SignatureVersion: '1',
  });
}
