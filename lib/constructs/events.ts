import { CfnOutput, Duration, Stack, Validations } from 'aws-cdk-lib';
import { EventBus, type IEventBus } from 'aws-cdk-lib/aws-events';
import { FilterCriteria, FilterRule, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Construct } from 'constructs';
import { EVENTS_PER_PUT } from '../../lambdas/core/events/publish';
import { SETTING } from '../../lambdas/core/settings';
import type { MailerConfig } from '../config';
import type { MailerData } from './data';
import { ProjectFunction } from './project-function';

export interface MailerEventsProps {
  data: MailerData;
  config: MailerConfig;
}

/**
 * The stack's events on EventBridge. Functions that write a fact (a job accepted or ended, a report
 * noted, an unsubscribe, a pause or resume) write its event to the outbox table in the same
 * transaction (`ProjectFunction.tellsEvents`); the publisher reads the outbox's stream and puts each
 * new event on the bus, source `nonprofit-mailer`. Users subscribe with rules of their own.
 */
export class MailerEvents extends Construct {
  readonly bus: IEventBus;
  readonly publisher: ProjectFunction;

  constructor(scope: Construct, id: string, { data, config }: MailerEventsProps) {
    super(scope, id);
    this.bus = config.eventBusName
      ? EventBus.fromEventBusName(this, 'Bus', config.eventBusName)
      : new EventBus(this, 'Bus', {
          description: 'Events of the nonprofit mailer (source nonprofit-mailer)',
        });

    new CfnOutput(Stack.of(this), 'EventBusName', {
      value: this.bus.eventBusName,
      description: 'The EventBridge bus the stack tells its events on (source nonprofit-mailer)',
    });

    this.publisher = new ProjectFunction(this, 'PublishEvents', {
      entry: 'worker/publish-events.ts',
      description: "Puts the events the outbox table's stream brings on the EventBridge bus",
      timeout: Duration.seconds(30),
    })
      .setting(SETTING.eventBusName, this.bus.eventBusName)
      .acknowledgeNoDeadLetterTarget('stream');
    this.bus.grantPutEventsTo(this.publisher);
    this.publisher.addEventSource(
      new DynamoEventSource(data.outbox, {
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize: EVENTS_PER_PUT * 10,
        maxBatchingWindow: Duration.seconds(1),
        // Only an item's first write is an event: a rewrite or TTL's removal never invokes the publisher.
        filters: [FilterCriteria.filter({ eventName: FilterRule.isEqual('INSERT') })],
        // The publisher reports the first event the bus did not take; the stream goes on from there.
        reportBatchItemFailures: true,
        bisectBatchOnError: false,
        retryAttempts: -1,
      }),
    );
    Validations.of(this.publisher).acknowledge({
      id: 'Serverless::Serverless-LambdaEventSourceMappingDestination',
      reason:
        'An event is retried until the bus takes it (a dropped one is a fact never told); the EventsBehind alarm says when publishing is stuck.',
    });
  }
}
