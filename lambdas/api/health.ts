// GET /health (no API key: the verdict alone) and GET /health/details (the operator's key: every
// check): handler --> health probes (DynamoDB, SQS, CloudWatch, SES), cached a few seconds
import { CloudWatchClient, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import { GetEmailIdentityCommand } from '@aws-sdk/client-sesv2';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { queueGaugesFromEnv } from '../core/adapters';
import { documentClient, sesClient } from '../core/aws-clients';
import { bound, TABLE } from '../core/bindings';
import {
  CachedHealth,
  checkHealth,
  type HealthCheck,
  type HealthProbes,
  type IdentityState,
  publicHealth,
  type SendingState,
  type VerificationState,
} from '../core/health/health';
import { apiHandler, json } from '../core/http';
import { logger } from '../core/observability/telemetry';
import { DynamoGuardStore } from '../core/sending/dynamodb/dynamo-reputation';
import { SesSending } from '../core/sending/ses-sending';
import { readSettings, SETTING } from '../core/settings';

/** The keyed route: every check, each failure as a stable code. */
export const HEALTH_DETAILS_RESOURCE = '/health/details';

export const makeHealth = (health: Pick<CachedHealth, 'get'>) =>
  apiHandler(async (event) => {
    const { report } = await health.get();
    // Anyone may ask /health: it tells whether the system works and when that was checked, not what
    // it runs on, what fails or why. The details take a key that may see them.
    const body = event.resource === HEALTH_DETAILS_RESOURCE ? report : publicHealth(report);
    return json(report.status === 'unhealthy' ? 503 : 200, body, { 'cache-control': 'no-store' });
  });

/** Each check that could not be made, logged once per report (not once per answer of a cached one). */
export function logProblems({ problems }: HealthCheck): void {
  for (const problem of problems) logger.warn('A health check could not be made', { ...problem });
}

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
  ...(env.transport === 'ses' ? { sending: sendingProbe(env.configurationSet) } : {}),
  ...(env.senderIdentity ? { identity: () => sesIdentity(env.senderIdentity as string) } : {}),
};

/** Built once per environment, with the SES transport only (the jobs table is bound then). */
function sendingProbe(configurationSet: string | undefined) {
  const ses = new SesSending(sesClient, configurationSet);
  const guard = new DynamoGuardStore({ client: documentClient, jobsTable: bound(TABLE.jobs) });
  return () => sesSending(ses, guard);
}

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

/**
 * What SES says of the account and of the configuration set the consumer sends with, and, when the
 * reputation guard turned the set off, why, with the rates it saw.
 */
async function sesSending(ses: SesSending, guard: DynamoGuardStore): Promise<SendingState> {
  const [state, record] = await Promise.all([ses.state(), guard.get()]);
  if (!state.enabled && record?.paused)
    return {
      enabled: false,
      reason: `The reputation guard paused sending at ${record.paused_at}: ${record.reason}`,
    };
  return state;
}

export const handler = makeHealth(
  new CachedHealth(async () => {
    const result = await checkHealth(probes, env.serviceVersion);
    logProblems(result);
    return result;
  }, env.cacheSeconds * 1000),
);
