// GET /health (no API key): handler --> health probes (DynamoDB, SQS, CloudWatch, SES), cached a few seconds
import { CloudWatchClient, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import {
  GetAccountCommand,
  GetConfigurationSetCommand,
  GetEmailIdentityCommand,
} from '@aws-sdk/client-sesv2';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { queueGaugesFromEnv } from '../core/adapters';
import { documentClient, sesClient } from '../core/aws-clients';
import { bound, TABLE } from '../core/bindings';
import {
  CachedHealth,
  checkHealth,
  type HealthProbes,
  type IdentityState,
  type SendingState,
  type VerificationState,
} from '../core/health/health';
import { apiHandler, json } from '../core/http';
import { readSettings, SETTING } from '../core/settings';

export const makeHealth = (health: Pick<CachedHealth, 'get'>) =>
  apiHandler(async () => {
    const report = await health.get();
    return json(report.status === 'unhealthy' ? 503 : 200, report, { 'cache-control': 'no-store' });
  });

const nonprofitsTable = bound(TABLE.nonprofits);
const gauges = queueGaugesFromEnv();
const env = readSettings({
  alarmNamePrefix: SETTING.alarmNamePrefix,
  serviceVersion: SETTING.serviceVersion,
  cacheSeconds: SETTING.healthCacheSeconds,
  transport: SETTING.emailTransport,
  configurationSet: SETTING.sesConfigurationSet,
  senderIdentity: SETTING.senderIdentity,
});
const cloudWatch = new CloudWatchClient({});

const probes: HealthProbes = {
  readDatabase: async () => {
    // A real read (of a key that never exists) measures what requests meet, unlike DescribeTable.
    await documentClient.send(
      new GetCommand({ TableName: nonprofitsTable, Key: { email: 'health-check@invalid' } }),
    );
  },
  queueDepth: (which) => gauges[which].depth(),
  firingAlarms: async () => {
    const { MetricAlarms = [], CompositeAlarms = [] } = await cloudWatch.send(
      new DescribeAlarmsCommand({ AlarmNamePrefix: env.alarmNamePrefix, StateValue: 'ALARM' }),
    );
    return [...MetricAlarms, ...CompositeAlarms].map((alarm) => alarm.AlarmName ?? '');
  },
  ...(env.transport === 'ses' ? { sending: () => sesSending(env.configurationSet) } : {}),
  ...(env.senderIdentity ? { identity: () => sesIdentity(env.senderIdentity as string) } : {}),
};

/** What SES says of the sending domain: verified, DKIM signing, the MAIL FROM domain's MX found. */
async function sesIdentity(name: string): Promise<IdentityState> {
  const identity = await sesClient.send(new GetEmailIdentityCommand({ EmailIdentity: name }));
  return {
    name,
    verifiedForSending: identity.VerifiedForSendingStatus === true,
    verification: identity.VerificationStatus as VerificationState | undefined,
    dkim: identity.DkimAttributes?.Status as VerificationState | undefined,
    mailFrom: identity.MailFromAttributes?.MailFromDomainStatus as VerificationState | undefined,
  };
}

/** What SES says of the account (and of the configuration set the consumer sends with). */
async function sesSending(configurationSet: string | undefined): Promise<SendingState> {
  const [account, set] = await Promise.all([
    sesClient.send(new GetAccountCommand({})),
    configurationSet
      ? sesClient.send(new GetConfigurationSetCommand({ ConfigurationSetName: configurationSet }))
      : undefined,
  ]);
  const accountEnabled = account.SendingEnabled !== false;
  const setEnabled = set?.SendingOptions?.SendingEnabled !== false;
  const reason = !accountEnabled
    ? `Sending is disabled for the account (enforcement status ${account.EnforcementStatus ?? 'unknown'})`
    : !setEnabled
      ? `Sending is paused for the configuration set ${configurationSet}`
      : undefined;
  return { enabled: accountEnabled && setEnabled, ...(reason ? { reason } : {}) };
}

export const handler = makeHealth(
  new CachedHealth(() => checkHealth(probes, env.serviceVersion), env.cacheSeconds * 1000),
);
