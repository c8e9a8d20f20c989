import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';

/**
 * A customer-managed key for an SNS topic an AWS service publishes to. The service encrypts what it
 * publishes with the topic's key, so the key's policy must let that service use it; the AWS-managed
 * `alias/aws/sns` key cannot grant that, and a topic encrypted with it silently receives nothing.
 * Limited to this account's resources, rotated yearly, and removed with the stack: it protects
 * messages in transit, not data at rest.
 */
export function publisherTopicKey(
  scope: Construct,
  id: string,
  props: { description: string; service: string; statementId: string },
): Key {
  const key = new Key(scope, id, {
    description: props.description,
    enableKeyRotation: true,
    removalPolicy: RemovalPolicy.DESTROY,
    pendingWindow: Duration.days(7),
  });
  key.addToResourcePolicy(
    new PolicyStatement({
      sid: props.statementId,
      principals: [new ServicePrincipal(props.service)],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
      conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(scope).account } },
    }),
  );
  return key;
}
