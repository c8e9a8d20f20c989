import { ArnFormat, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { CfnLoggingConfiguration, CfnWebACL, CfnWebACLAssociation } from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import type { MailerConfig } from '../config';
import type { MailerApi } from './api';

/** The names of the web ACL's rules, as its metrics and logs show them. */
export const WAF_RULE = {
  ipReputation: 'AmazonIpReputation',
  unsubscribePerIp: 'UnsubscribePerIp',
  apiPerIp: 'ApiPerIp',
  knownBadInputs: 'KnownBadInputs',
  common: 'CoreRuleSet',
} as const;

/**
 * Rules of the core rule set that would refuse what this API is for: a job of thousands of
 * recipients or an import is far over the set's 8 KB body limit, and an HTML email template is
 * HTML in a JSON body. They count (visible in the metrics and logs) instead of blocking; the
 * handlers validate every field, and HTML templates are checked for scripts and handlers.
 */
const COUNTED_CORE_RULES = ['SizeRestrictions_BODY', 'CrossSiteScripting_BODY'];

const TOO_MANY_REQUESTS = 'too-many-requests';
/** The unsubscribe route's path, whatever the stage or custom domain before it. */
const UNSUBSCRIBE_PATH_PATTERN = '/unsubscribe/?$';

const visibility = (metricName: string): CfnWebACL.VisibilityConfigProperty => ({
  cloudWatchMetricsEnabled: true,
  metricName,
  sampledRequestsEnabled: true,
});

/**
 * A WAF web ACL on the API's stage: AWS's IP reputation list, known bad inputs and core rule set,
 * and two per-client-address rate limits, a tight one on `/unsubscribe` (a person clicks a link
 * once or twice) and a looser one on everything. A client over a limit gets `429` until its rate
 * drops below it; other clients, whatever one of them does, are not held back by it. Logs go to an
 * `aws-waf-logs-` group with the API key and the query string (the unsubscribe token) redacted.
 */
export class ApiWebAcl extends Construct {
  readonly webAcl: CfnWebACL;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, { api, config }: { api: MailerApi; config: MailerConfig }) {
    super(scope, id);
    const stack = Stack.of(this);
    const window = config.wafRateWindowSeconds;
    // As API Gateway's own throttle answers, so a client handles both alike.
    const tooMany: CfnWebACL.RuleActionProperty = {
      block: {
        customResponse: {
          responseCode: 429,
          customResponseBodyKey: TOO_MANY_REQUESTS,
          responseHeaders: [{ name: 'retry-after', value: String(window) }],
        },
      },
    };
    const managed = (
      name: string,
      group: string,
      priority: number,
      counted: readonly string[] = [],
    ): CfnWebACL.RuleProperty => ({
      name,
      priority,
      overrideAction: { none: {} },
      statement: {
        managedRuleGroupStatement: {
          vendorName: 'AWS',
          name: group,
          ...(counted.length > 0
            ? { ruleActionOverrides: counted.map((rule) => ({ name: rule, actionToUse: { count: {} } })) }
            : {}),
        },
      },
      visibilityConfig: visibility(name),
    });
    this.webAcl = new CfnWebACL(this, 'WebAcl', {
      name: `${stack.stackName}-api`,
      description: 'Guards the nonprofit-mailer API: AWS managed rules and per-client rate limits',
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      customResponseBodies: {
        [TOO_MANY_REQUESTS]: { contentType: 'APPLICATION_JSON', content: '{"message":"Too Many Requests"}' },
      },
      visibilityConfig: visibility(`${stack.stackName}-api`),
      rules: [
        managed(WAF_RULE.ipReputation, 'AWSManagedRulesAmazonIpReputationList', 0),
        {
          name: WAF_RULE.unsubscribePerIp,
          priority: 1,
          action: tooMany,
          statement: {
            rateBasedStatement: {
              limit: config.wafUnsubscribeRequestsPerIp,
              evaluationWindowSec: window,
              aggregateKeyType: 'IP',
              // Decoded and lower-cased first, a trailing slash allowed: `/unsubscrib%65/` is the same
              // route to API Gateway, and must not be a way around this rule.
              scopeDownStatement: {
                regexMatchStatement: {
                  fieldToMatch: { uriPath: {} },
                  regexString: UNSUBSCRIBE_PATH_PATTERN,
                  textTransformations: [
                    { priority: 0, type: 'URL_DECODE' },
                    { priority: 1, type: 'LOWERCASE' },
                  ],
                },
              },
            },
          },
          visibilityConfig: visibility(WAF_RULE.unsubscribePerIp),
        },
        {
          name: WAF_RULE.apiPerIp,
          priority: 2,
          action: tooMany,
          statement: {
            rateBasedStatement: {
              limit: config.wafRequestsPerIp,
              evaluationWindowSec: window,
              aggregateKeyType: 'IP',
            },
          },
          visibilityConfig: visibility(WAF_RULE.apiPerIp),
        },
        managed(WAF_RULE.knownBadInputs, 'AWSManagedRulesKnownBadInputsRuleSet', 3),
        managed(WAF_RULE.common, 'AWSManagedRulesCommonRuleSet', 4, COUNTED_CORE_RULES),
      ],
    });

    new CfnWebACLAssociation(this, 'Association', {
      resourceArn: api.restApi.deploymentStage.stageArn,
      webAclArn: this.webAcl.attrArn,
    });

    // WAF takes only log groups named aws-waf-logs-…: client addresses and paths, kept a month.
    this.logGroup = new LogGroup(this, 'Logs', {
      logGroupName: `aws-waf-logs-${stack.stackName}`,
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    new CfnLoggingConfiguration(this, 'Logging', {
      resourceArn: this.webAcl.attrArn,
      // The group's ARN without the `:*` CloudFormation's attribute ends with, as WAF asks.
      logDestinationConfigs: [
        stack.formatArn({
          service: 'logs',
          resource: 'log-group',
          resourceName: this.logGroup.logGroupName,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ],
      // The API key opens the API; the query string of /unsubscribe is a person's token.
      redactedFields: [{ singleHeader: { Name: 'x-api-key' } }, { queryString: {} }],
    });
  }
}
