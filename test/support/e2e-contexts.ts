import { UNTHROTTLED_CONTEXT } from '../../fuzz/setup';
import { UNTHROTTLED_IMPORTS } from './seed';

/**
 * The CDK context of each end-to-end file's runtime, in one place so the end-to-end global setup
 * can synthesize them all in one process before any file starts (see `runtimes-global-setup.ts`):
 * loading the CDK and cdk-nag costs about 9 s of CPU, paid once there instead of once per runtime.
 * A runtime started with a context not listed here still works; it synthesizes for itself.
 */

/**
 * WAF's per-address limits out of the way: every test's requests come from 127.0.0.1, many a
 * minute. The web ACL's own test (usage-plan.test.ts) floods from another address with small ones.
 */
const UNLIMITED_WAF = { wafRequestsPerIp: 2_000_000_000, wafUnsubscribeRequestsPerIp: 2_000_000_000 };

/**
 * Jobs over HTTP: limits raised so the test's own traffic is never throttled (throttling has its
 * own test), the send rate raised so thousands of emails go through the local SES in seconds, and
 * the consumer slowed to two at a time so a restart lands mid-job. Recovery is shortened as in the
 * outage test: a `kill -9` can take an outcome's stream record with DynamoDB Local (written, never
 * counted), and the sweeper then counts the job from its ledger after `ledgerCountAfterSeconds`
 * (five minutes by default, longer than the test waits).
 */
export const EMAIL_JOBS_CONTEXT = {
  usagePlanRateLimit: 2000,
  usagePlanBurstLimit: 2000,
  sendEmailRequestsPerMinute: 600,
  sendEmailBurstLimit: 100,
  consumerMaxConcurrency: 2,
  sesMaxSendRate: 2000,
  // The recovery after a kill waits out a dead consumer's claims and the queue's visibility
  // timeout, both set by the consumer's timeout: 10 s (not 30) makes them 20 s and 60 s.
  consumerTimeoutSeconds: 10,
  // A fresh /health report every second, so the health tests see DynamoDB Local's state soon.
  healthCacheSeconds: 1,
  ledgerCountAfterSeconds: 30,
  sweeperQueueSettleSeconds: 10,
  ...UNTHROTTLED_IMPORTS,
  ...UNLIMITED_WAF,
};

/**
 * DynamoDB Local away mid-job: a short consumer timeout, so an outage longer than an invocation
 * makes Lambda's timeout end the consumers mid-batch and the recovery (leases of 15 s, a visibility
 * timeout of 30 s) runs within the test; two consumers, paced slowly enough that the outage lands
 * mid-job. A crash can lose an outcome's stream record (DynamoDB Local's, which AWS's streams do
 * not): the sweeper then counts the job from its ledger after the shortest wait the stack allows,
 * not the deployed five minutes.
 */
export const OUTAGE_CONTEXT = {
  usagePlanRateLimit: 2000,
  usagePlanBurstLimit: 2000,
  consumerTimeoutSeconds: 5,
  consumerMaxConcurrency: 2,
  sesMaxSendRate: 40,
  sweeperQueueSettleSeconds: 10,
  ledgerCountAfterSeconds: 30,
  ...UNTHROTTLED_IMPORTS,
  ...UNLIMITED_WAF,
};

/**
 * Job control: an account in the SES sandbox, as a new user's is: the local SES then refuses mail
 * to an address that is not a verified identity (`MessageRejected`), which is the failure a retry
 * exists for. Sending is slow (4 emails a second over two consumers), so a cancel lands mid-job.
 */
export const JOB_CONTROL_CONTEXT = {
  usagePlanRateLimit: 2000,
  usagePlanBurstLimit: 2000,
  sendEmailRequestsPerMinute: 600,
  sendEmailBurstLimit: 100,
  sesSandbox: true,
  sesMaxSendRate: 4,
  consumerMaxConcurrency: 2,
  // Small enough for the last test to reach, after what the others send.
  recipientQuotaPerDay: 100,
  ...UNTHROTTLED_IMPORTS,
  ...UNLIMITED_WAF,
};

/**
 * The registry's story. The reputation guard pauses at a 10 % complaint rate over at least five
 * emails (one complaint in the guard's test trips it; nothing else there makes the simulator
 * complain), and a paused email waits 1 s, not a minute, before it is tried again (doubling each
 * time). Four keys: the operator's scopes split as a team would split them. An erasure looks again
 * every second at the jobs it waits out (a minute by default).
 */
export const NONPROFITS_API_CONTEXT = {
  apiKeys: [
    { name: 'operator', scopes: ['operator'] },
    { name: 'sender', scopes: ['send'] },
    { name: 'reader', scopes: ['registry:read'] },
    { name: 'suppressor', scopes: ['suppressions:write'] },
  ],
  reputationMinVolume: 5,
  pauseComplaintRate: 0.1,
  sendingPausedWaitSeconds: 1,
  erasureRecheckSeconds: 1,
  ...UNLIMITED_WAF,
};

/** A small plan, set the way a user sets it: CDK context, read through the synthesized template. */
export const SMALL_PLAN_CONTEXT = {
  usagePlanRateLimit: 1,
  usagePlanBurstLimit: 3,
  usagePlanQuotaPerDay: 8,
  sendEmailRequestsPerMinute: 1,
  sendEmailBurstLimit: 2,
  // WAF's least: 10 requests to /unsubscribe a minute from one address.
  wafUnsubscribeRequestsPerIp: 10,
  wafRateWindowSeconds: 60,
};

/** Every context above, the fuzzer's, and none (the lifecycle's runtime, as `npm start` runs). */
export const E2E_CONTEXTS: Record<string, unknown>[] = [
  EMAIL_JOBS_CONTEXT,
  OUTAGE_CONTEXT,
  JOB_CONTROL_CONTEXT,
  NONPROFITS_API_CONTEXT,
  SMALL_PLAN_CONTEXT,
  UNTHROTTLED_CONTEXT,
  {},
];
