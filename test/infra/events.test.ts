import { describe, expect, it } from 'vitest';
import { TABLE } from '../../lambdas/core/bindings';
import { SETTING } from '../../lambdas/core/settings';
import { synthesizeForTests } from '../support/synth';
import { FUNCTION, functionByDescription, logicalIdOf, statementsOf } from './template-queries';

const { assertions } = synthesizeForTests();
const outboxId = logicalIdOf(assertions, 'AWS::DynamoDB::Table', 'DataOutbox');

describe('the events on EventBridge', () => {
  it('keeps waiting events in an outbox table whose stream carries their first writes, removed by TTL with the stack', () => {
    assertions.hasResource('AWS::DynamoDB::Table', {
      Properties: {
        KeySchema: [{ AttributeName: 'event_id', KeyType: 'HASH' }],
        StreamSpecification: { StreamViewType: 'NEW_IMAGE' },
        TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
        BillingMode: 'PAY_PER_REQUEST',
      },
      DeletionPolicy: 'Delete',
    });
  });

  it('creates its own bus, which the publisher alone may put events on, from the outbox stream (first writes only)', () => {
    const buses = assertions.findResources('AWS::Events::EventBus');
    expect(Object.keys(buses)).toHaveLength(1);
    const [busId] = Object.keys(buses);
    const puts = Object.values(assertions.findResources('AWS::IAM::Policy'))
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement)
      .filter((statement) => [statement.Action].flat().includes('events:PutEvents'));
    expect(puts).toEqual([
      { Action: 'events:PutEvents', Effect: 'Allow', Resource: { 'Fn::GetAtt': [busId, 'Arn'] } },
    ]);
    expect(
      statementsOf(assertions, FUNCTION.publisher).filter((s) =>
        [s.Action].flat().includes('events:PutEvents'),
      ),
    ).toHaveLength(1);
    const [publisherId, publisher] = functionByDescription(assertions, FUNCTION.publisher);
    expect(publisher.Properties.Environment.Variables[SETTING.eventBusName.variable]).toEqual({ Ref: busId });
    assertions.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: publisherId },
      EventSourceArn: { 'Fn::GetAtt': [outboxId, 'StreamArn'] },
      StartingPosition: 'TRIM_HORIZON',
      FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ eventName: ['INSERT'] }) }] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: false,
      MaximumRetryAttempts: -1,
    });
    assertions.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'IteratorAge',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: publisherId } }],
    });
  });

  it('binds the outbox to exactly the functions that write a fact, for puts only, and the erasure that drops one', () => {
    const bound = Object.values(assertions.findResources('AWS::Lambda::Function'))
      .filter((fn) => fn.Properties.Environment?.Variables?.[TABLE.outbox] !== undefined)
      .map((fn) => fn.Properties.Description as string)
      .sort();
    expect(bound).toEqual(
      [
        'POST /send-email',
        'POST /jobs/{job_id}/cancel',
        FUNCTION.counter,
        FUNCTION.sweeper,
        FUNCTION.feedbackConsumer,
        'GET|POST /unsubscribe',
        'POST /sending/resume',
        FUNCTION.personRequests,
      ].sort(),
    );
    // The erasure puts nothing there: it drops the events still waiting that name the person.
    const outboxActions = statementsOf(assertions, FUNCTION.personRequests)
      .filter((statement) => JSON.stringify(statement.Resource).includes('DataOutbox'))
      .flatMap((statement) => [statement.Action].flat());
    expect(outboxActions.sort()).toEqual(['dynamodb:DeleteItem', 'dynamodb:Scan']);
  });

  it('tells events on the bus `eventBusName` names instead of a bus of its own', () => {
    const named = synthesizeForTests({ eventBusName: 'default' }).assertions;
    expect(Object.keys(named.findResources('AWS::Events::EventBus'))).toHaveLength(0);
    const [, publisher] = functionByDescription(named, FUNCTION.publisher);
    expect(publisher.Properties.Environment.Variables[SETTING.eventBusName.variable]).toBe('default');
    const put = statementsOf(named, FUNCTION.publisher).find((s) =>
      [s.Action].flat().includes('events:PutEvents'),
    );
    expect(JSON.stringify(put?.Resource)).toContain(':event-bus/default');
  });

  it('refuses an event bus name EventBridge would not take', () => {
    expect(() => synthesizeForTests({ eventBusName: 'no spaces allowed' })).toThrow(/eventBusName/);
  });
});
