import { ArnFormat, CustomResource, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { ManagedPolicy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { ProjectFunction } from './project-function';

/**
 * API Gateway's account-level logging role (the account and region's "CloudWatch log role ARN",
 * shared by every API there), which a stage's access and execution logs need. CDK's `RestApi`
 * would set it to a role of this stack, over whatever another API relies on, and delete that role
 * with the stack. Here a custom resource sets it only when the account has none, and neither
 * changes nor removes it afterwards; the role outlives the stack, as the setting may still name it.
 */
export class ApiGatewayAccountLogRole extends Construct {
  /** Depend on this before creating a stage with logging. */
  readonly setting: CustomResource;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const stack = Stack.of(this);
    const role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
      description:
        "API Gateway's account-level role for writing APIs' logs (set only if the account had none)",
      managedPolicies: [
        ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs'),
      ],
    });
    role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    Validations.of(role).acknowledge({
      id: 'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason: "API Gateway's account-level logging role; AWS maintains this policy for exactly this purpose.",
    });

    const handler = new ProjectFunction(this, 'Handler', {
      entry: 'deploy/api-gateway-account.ts',
      description: "Sets API Gateway's account logging role when the account has none",
      memorySize: 256,
      // Retries while IAM makes a new role usable by API Gateway (about a minute at most).
      timeout: Duration.minutes(2),
    }).acknowledgeNoDeadLetterTarget('cloudformation');
    const account = stack.formatArn({
      service: 'apigateway',
      account: '',
      resource: '/account',
      arnFormat: ArnFormat.NO_RESOURCE_NAME,
    });
    handler.addToRolePolicy(
      new PolicyStatement({ actions: ['apigateway:GET', 'apigateway:PATCH'], resources: [account] }),
    );
    handler.addToRolePolicy(new PolicyStatement({ actions: ['iam:PassRole'], resources: [role.roleArn] }));
    // Whether the role the account names still exists: any role of the account may be the one.
    const anyRole = stack.formatArn({ service: 'iam', region: '', resource: 'role', resourceName: '*' });
    handler.addToRolePolicy(new PolicyStatement({ actions: ['iam:GetRole'], resources: [anyRole] }));
    Validations.of(handler.role ?? handler).acknowledge({
      id: 'AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*]',
      reason:
        "iam:GetRole only, to learn whether the role the account's API Gateway setting names (any role) still exists before keeping it.",
    });

    this.setting = new CustomResource(this, 'Setting', {
      serviceToken: handler.functionArn,
      resourceType: 'Custom::ApiGatewayAccountLogRole',
      // Earlier versions set CDK's own role (deleted by this upgrade's cleanup): that one is replaced.
      properties: {
        RoleArn: role.roleArn,
        ReplacedRoleNamePrefix: `${stack.stackName}-ApiRestApiCloudWatchRole`,
      },
    });
  }
}
