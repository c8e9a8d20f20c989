import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';

/** The index of nonprofits by email domain, which serves `GET /nonprofits?domain=`. */
export const NONPROFITS_DOMAIN_INDEX = 'by-domain';

/** The system's tables: on-demand billing and point-in-time recovery throughout. */
export class MailerData extends Construct {
  readonly nonprofits: Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.nonprofits = new Table(this, 'Nonprofits', {
      partitionKey: { name: 'email', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // The registry is the users' data: deleting the stack must not delete it.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.nonprofits.addGlobalSecondaryIndex({
      indexName: NONPROFITS_DOMAIN_INDEX,
      partitionKey: { name: 'domain', type: AttributeType.STRING },
      sortKey: { name: 'email', type: AttributeType.STRING },
    });
  }
}
