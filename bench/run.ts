// npm run bench [-- --recipients 10000]: the email pipeline on the local runtime, measured.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { App } from 'aws-cdk-lib';
import { chunks, mapConcurrently } from '../lambdas/core/concurrency';
import { type DeliveryOutcome, deliveryShards } from '../lambdas/core/jobs/deliveries';
import { DynamoDeliveries } from '../lambdas/core/jobs/dynamodb/dynamo-deliveries';
import { chunkMessages } from '../lambdas/core/queue/email-queue';
import { readConfig } from '../lib/config';
import { consumerScaling } from '../lib/send-rate';
import { operatorFirst } from '../local/api-keys';
import { dynamoDbClient } from '../local/dynamodb';
import type { Exchange } from '../local/observing-proxy';
import { type LocalService, startLocalRuntime } from '../local/runtime';
import { contextDefaults, LOCAL_CONTEXT, PROJECT_ROOT } from '../local/synth';
import { CallCounter } from './call-counter';
import { costAtSendRate } from './cost-model';
import { PRICES } from './prices';

const MAX_RECIPIENTS_PER_JOB = 10_000;
const { values } = parseArgs({
  options: {
    recipients: { type: 'string', default: '10000' },
    // High by default, so the run measures the pipeline; set it low to see the rate held.
    'ses-max-send-rate': { type: 'string', default: '10000' },
    'no-count': { type: 'boolean', default: false },
  },
});
const total = Number(values.recipients);
if (!Number.isInteger(total) || total < 1 || total > 50_000)
  throw new Error('--recipients must be 1 to 50,000');

// Limits raised so the benchmark measures the pipeline, not the usage plan; the consumer keeps cdk.json's settings.
const projectContext = (
  JSON.parse(readFileSync(`${PROJECT_ROOT}cdk.json`, 'utf8')) as { context: Record<string, number> }
).context;
const context = contextDefaults({
  wafRequestsPerIp: 2_000_000_000,
  usagePlanRateLimit: 10_000,
  usagePlanBurstLimit: 10_000,
  sendEmailRequestsPerMinute: 6_000,
  sendEmailBurstLimit: 100,
  sesMaxSendRate: Number(values['ses-max-send-rate']),
});
// The consumer's batch and concurrency follow from the send rate, as the stack derives them.
const config = readConfig(new App({ context: { ...LOCAL_CONTEXT, ...projectContext, ...context } }).node);
const { batchSize, maxConcurrency: concurrency } = consumerScaling(config);

const stateDir = mkdtempSync(join(tmpdir(), 'mailer-bench-'));
const counters = {
  dynamodb: new CallCounter('dynamodb'),
  sqs: new CallCounter('sqs'),
  ses: new CallCounter('ses'),
};
const errors: string[] = [];
console.log(`Starting the local runtime (consumer: batches of ${batchSize}, ${concurrency} at once)…`);
const runtime = await startLocalRuntime({
  stateDir,
  port: 0,
  log: (line) => {
    if (/ERROR|failed/i.test(line)) errors.push(line);
  },
  // Counting costs the runtime's one main thread some time; --no-count measures speed alone.
  ...(values['no-count']
    ? {}
    : { observe: (service: LocalService, exchange: Exchange) => counters[service].observe(exchange) }),
});
const { dynamodb: dynamoCounter, sqs: sqsCounter, ses: sesCounter } = counters;
const baseline: Record<string, { invocations: number; totalMs: number }> = {};
const apiKey = operatorFirst(runtime.apiKeys)[0]?.value ?? '';
const http = async (method: string, path: string, body?: unknown) => {
  const response = await fetch(`${runtime.url}${path}`, {
    method,
    headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

try {
  const raw = dynamoDbClient(runtime.dynamoDbEndpoint);
  const documents = DynamoDBDocumentClient.from(raw);
  const tables = await raw.send(new ListTablesCommand({}));
  const table = (prefix: string) => tables.TableNames?.find((name) => name.startsWith(prefix)) ?? '';
  const emails = Array.from(
    { length: total },
    (_, n) => `member${String(n).padStart(5, '0')}@bench.example.org`,
  );
  console.log(`Registering ${total} nonprofits…`);
  await mapConcurrently(chunks(emails, 25), 8, async (batch) => {
    await documents.send(
      new BatchWriteCommand({
        RequestItems: {
          [table('DataNonprofits')]: batch.map((email, n) => ({
            PutRequest: {
              Item: {
                email,
                domain: 'bench.example.org',
                name: `Member ${n}`,
                address: `${n} Benchmark Avenue, Springfield`,
                created_at: '',
                updated_at: '',
              },
            },
          })),
        },
      }),
    );
  });
  await dynamoCounter.learnIndexes(runtime.dynamoDbEndpoint, tables.TableNames ?? []);
  for (const counter of Object.values(counters)) counter.reset();
  for (const [name, stats] of runtime.functionStats()) Object.assign(baseline, { [name]: { ...stats } });

  console.log(`Submitting ${total} recipients in ${Math.ceil(total / MAX_RECIPIENTS_PER_JOB)} job(s)…`);
  const template =
    'Dear {name},\n\nThank you for the work you do at {address}. We would like to invite {email} to our annual gathering.\n\nWarm regards,\nThe Foundation';
  const started = performance.now();
  const submitted = await Promise.all(
    chunks(emails, MAX_RECIPIENTS_PER_JOB).map(async (part) => {
      const begin = performance.now();
      const response = await http('POST', '/send-email', {
        emails: part,
        template,
        subject: 'An invitation for {name}',
      });
      if (response.status !== 202)
        throw new Error(`POST /send-email answered ${response.status}: ${JSON.stringify(response.body)}`);
      return { jobId: String(response.body.job_id), acceptSeconds: (performance.now() - begin) / 1000 };
    }),
  );
  const accepted = performance.now();
  for (const { jobId } of submitted) {
    for (;;) {
      const { body } = await http('GET', `/jobs/${jobId}/status`);
      if (body.status === 'completed' || body.status === 'failed') {
        if (body.sent !== body.total_emails)
          throw new Error(`Job ${jobId} ended with ${JSON.stringify(body)}`);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const finished = performance.now();
  // Taken now, before the raw writes: how long each engine took with the pipeline's calls, waiting included.
  const engineTimes = Object.fromEntries(
    Object.values(counters).map((counter) => [counter.service, counter.engineTimes()]),
  );
  const pipelineRate = total / ((finished - started) / 1000);

  // The same writes, straight to the same DynamoDB Local: a claim per chunk of ten recipients, then
  // each recipient's outcome (one conditional write each), as many chunks at once as the consumer
  // runs environments, on a job of the same size. The counting from the stream runs beside it, as in
  // the pipeline.
  const rawJobId = '00000000-0000-4000-8000-0000000bench';
  await documents.send(
    new PutCommand({
      TableName: table('DataJobs'),
      Item: {
        job_id: rawJobId,
        api_key_id: 'bench',
        status: 'queued',
        total_emails: total,
        sent: 0,
        failed: 0,
        remaining: total,
        created_at: new Date().toISOString(),
        updated_at: new Date().toISOString(),
      },
    }),
  );
  const recorder = new DynamoDeliveries({
    client: documents,
    jobsTable: table('DataJobs'),
    deliveriesTable: table('DataDeliveries'),
    leaseMs: 60_000,
    // Spread as the pipeline's job of the same size is.
    shardsOf: async () => deliveryShards(total),
  });
  const rawStarted = performance.now();
  await mapConcurrently(chunkMessages(rawJobId, emails), concurrency, async ({ chunk, recipients }) => {
    const claim = await recorder.claimChunk(rawJobId, chunk, recipients);
    if (claim.state !== 'claimed') throw new Error(`Could not claim chunk ${chunk}`);
    const outcomes: DeliveryOutcome[] = recipients.map((recipient) => ({
      recipient,
      status: 'sent',
      cc: [],
      attempts: 1,
      claimToken: claim.token,
      chunk,
      messageId: null,
    }));
    await recorder.record(rawJobId, outcomes);
  });
  // Until the job shows them all counted, as the pipeline's figure is taken at its jobs' completion.
  const countedBy = Date.now() + 5 * 60_000;
  for (;;) {
    if (Date.now() > countedBy) throw new Error('The raw job was not counted complete within 5 minutes');
    const { Item } = await documents.send(
      new GetCommand({ TableName: table('DataJobs'), Key: { job_id: rawJobId }, ConsistentRead: true }),
    );
    if (Item?.status === 'completed') break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const rawRate = total / ((performance.now() - rawStarted) / 1000);
  raw.destroy();

  const perEmail = (count: number) => count / total;
  const dynamo = [...dynamoCounter.counts.entries()].sort();
  const sqs = [...sqsCounter.counts.entries()].sort();
  const writeUnits = dynamo.reduce((sum, [, count]) => sum + count.writeUnits, 0);
  const readUnits = dynamo.reduce((sum, [, count]) => sum + count.readUnits, 0);
  const indexUnits = dynamo.reduce((sum, [, count]) => sum + count.indexWriteUnits, 0);
  const sqsBilled = sqs.reduce((sum, [, count]) => sum + count.calls - count.empty, 0);
  const functions = [...runtime.functionStats()].map(([name, stats]) => {
    const before = baseline[name] ?? { invocations: 0, totalMs: 0 };
    return {
      name,
      invocations: stats.invocations - before.invocations,
      seconds: (stats.totalMs - before.totalMs) / 1000,
      memoryGb: stats.memorySize / 1024,
    };
  });
  const invocations = functions.reduce((sum, fn) => sum + fn.invocations, 0);
  const gbSeconds = functions.reduce((sum, fn) => sum + fn.seconds * fn.memoryGb, 0);
  const cost = {
    dynamodb: writeUnits * PRICES.dynamoDbWriteUnit + readUnits * PRICES.dynamoDbReadUnit,
    sqs: sqsBilled * PRICES.sqsRequest,
    lambda: invocations * PRICES.lambdaRequest + gbSeconds * PRICES.lambdaGbSecond,
    apiGateway: (submitted.length + submitted.length) * PRICES.apiGatewayRequest,
  };
  const perMillion = (dollars: number) => (dollars / total) * 1e6;
  const costPerMillion = perMillion(cost.dynamodb + cost.sqs + cost.lambda + cost.apiGateway);
  // The jobs have no cc: one SES recipient per email.
  const sesPerMillion = PRICES.sesRecipient * 1e6;
  // SES's rate, as SES would see it: the most sends answered in any one-second window.
  const sends = sesCounter.answeredAt;
  let busiestSecond = 0;
  for (let first = 0, last = 0; last < sends.length; last++) {
    while ((sends[last] as number) - (sends[first] as number) >= 1000) first++;
    busiestSecond = Math.max(busiestSecond, last - first + 1);
  }

  const counted = !values['no-count'];
  const consumerMemoryMb =
    [...runtime.functionStats()].find(([name]) => /SendEmails/.test(name))?.[1].memorySize ?? 1024;
  // The bench's jobs have no cc: one SES message per email.
  const atRates = Object.fromEntries(
    [14, 100].map((rate) => [
      String(rate),
      costAtSendRate(config, rate, {
        dynamodbPerEmail: cost.dynamodb / total,
        sqsPerEmail: cost.sqs / total,
        messagesPerEmail: 1,
        consumerMemoryMb,
      }),
    ]),
  );
  const results = {
    date: new Date().toISOString(),
    recipients: total,
    jobs: submitted.length,
    consumer: { batchSize, concurrency },
    sesMaxSendRate: config.sesMaxSendRate,
    sesSends: counted ? sends.length : null,
    sesBusiestSecond: counted ? busiestSecond : null,
    acceptSeconds: Math.max(...submitted.map((job) => job.acceptSeconds)),
    endToEndSeconds: (finished - started) / 1000,
    afterAcceptSeconds: (finished - accepted) / 1000,
    pipelineEmailsPerSecond: Math.round(pipelineRate),
    rawWriteEmailsPerSecond: Math.round(rawRate),
    ratio: Number((pipelineRate / rawRate).toFixed(2)),
    callsPerEmail: counted && {
      dynamodb: Object.fromEntries(
        dynamo.map(([operation, count]) => [operation, Number(perEmail(count.calls).toFixed(3))]),
      ),
      sqs: Object.fromEntries(
        sqs.map(([operation, count]) => [operation, Number(perEmail(count.calls - count.empty).toFixed(3))]),
      ),
      sqsEmptyReceives: sqs.reduce((sum, [, count]) => sum + count.empty, 0),
      lambdaInvocations: Number(perEmail(invocations).toFixed(3)),
    },
    /** Per operation during the pipeline: the engine's time (DynamoDB Local, local SQS, the SES front) in ms, its queue included. */
    engineTimeMs: counted && engineTimes,
    unitsPerEmail: {
      write: Number(perEmail(writeUnits).toFixed(3)),
      /** Of `write`, the writes to global secondary indexes. */
      indexWrite: Number(perEmail(indexUnits).toFixed(3)),
      read: Number(perEmail(readUnits).toFixed(3)),
    },
    costPerMillionEmails: counted && {
      dynamodb: Number(perMillion(cost.dynamodb).toFixed(3)),
      sqs: Number(perMillion(cost.sqs).toFixed(3)),
      lambda: Number(perMillion(cost.lambda).toFixed(3)),
      apiGateway: Number(perMillion(cost.apiGateway).toFixed(3)),
      total: Number(costPerMillion.toFixed(2)),
      ses: sesPerMillion,
      totalWithSes: Number((costPerMillion + sesPerMillion).toFixed(2)),
    },
    /** Per million emails at sesMaxSendRate 14 and 100, the consumer's Lambda priced from the AWS latency model (bench/cost-model.ts). */
    costAtSendRate: counted ? atRates : null,
    largestBundleBytes: Math.max(...[...runtime.functionStats().values()].map((fn) => fn.bundleBytes)),
    /** Each function's bundle, and its cold starts in this run with their mean init (a worker's start and the module's load). */
    functions: [...runtime.functionStats()].map(([name, stats]) => ({
      name,
      bundleBytes: stats.bundleBytes,
      coldStarts: stats.coldStarts,
      meanInitMs: stats.coldStarts > 0 ? Math.round(stats.initMs / stats.coldStarts) : null,
    })),
    errors: errors.length,
  };

  const { callsPerEmail, unitsPerEmail, costPerMillionEmails } = results;
  const counts =
    callsPerEmail && unitsPerEmail && costPerMillionEmails
      ? `AWS calls per email   DynamoDB ${JSON.stringify(callsPerEmail.dynamodb)}
                      SQS ${JSON.stringify(callsPerEmail.sqs)} (+${callsPerEmail.sqsEmptyReceives} empty short polls, not counted: Lambda long-polls in AWS)
                      Lambda invocations ${callsPerEmail.lambdaInvocations}
Engine time p50/p90   ${busiestEngineCalls(results.engineTimeMs || {})} (waiting in the engine included)
DynamoDB units/email  ${unitsPerEmail.write} write (${unitsPerEmail.indexWrite} of them to indexes), ${unitsPerEmail.read} read
Cost per 1M emails    $${costPerMillionEmails.total} (DynamoDB $${costPerMillionEmails.dynamodb}, SQS $${costPerMillionEmails.sqs}, Lambda $${costPerMillionEmails.lambda}, API Gateway $${costPerMillionEmails.apiGateway}) before SES
                      SES $${costPerMillionEmails.ses.toFixed(2)} beside it: $${costPerMillionEmails.totalWithSes} in all
At SES's send rate    ${Object.entries(atRates)
          .map(
            ([rate, at]) =>
              `${rate}/s: $${at.total} (DynamoDB $${at.dynamodb}, SQS $${at.sqs}, Lambda $${at.lambda})`,
          )
          .join('; ')}   target ≤ $1.50 each
SES send rate         ${results.sesSends} sends, at most ${results.sesBusiestSecond} in any second; sesMaxSendRate ${config.sesMaxSendRate}/s`
      : 'AWS calls and cost    not counted (--no-count)';
  console.log(`
Recipients            ${total} in ${submitted.length} job(s); consumer batches of ${batchSize}, ${concurrency} at once
Accepted in           ${results.acceptSeconds.toFixed(2)} s (the slowest POST /send-email)            target ≤ 3 s for 10,000
End to end            ${results.endToEndSeconds.toFixed(1)} s → ${results.pipelineEmailsPerSecond} emails/s
Raw DynamoDB writes   ${results.rawWriteEmailsPerSecond} emails/s (the same claims and outcome writes, straight to DynamoDB Local, until counted)
Pipeline / raw        ${Math.round(results.ratio * 100)} %                                            target ≥ 60 %
${counts}
Largest bundle        ${(results.largestBundleBytes / 1024).toFixed(0)} KB                                        target ≤ 250 KB
${results.functions
  .map(
    (fn) =>
      `  ${fn.name.padEnd(48)} ${(fn.bundleBytes / 1024).toFixed(0).padStart(4)} KB${fn.meanInitMs === null ? '' : `, ${fn.coldStarts} cold start(s), init ${fn.meanInitMs} ms`}`,
  )
  .join('\n')}
Errors logged         ${errors.length}${errors.length ? `: ${errors.slice(0, 3).join(' | ')}` : ''}`);
  mkdirSync(join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(
    join(
      PROJECT_ROOT,
      'bench',
      'results',
      `${total}-recipients-batch-${batchSize}-concurrency-${concurrency}-rate-${config.sesMaxSendRate}${counted ? '' : '-no-count'}.json`,
    ),
    `${JSON.stringify(results, null, 2)}\n`,
  );
} finally {
  await runtime.stop();
  rmSync(stateDir, { recursive: true, force: true });
}

/** The engine times of the operations the pipeline called most (at least once per ten emails), as text. */
function busiestEngineCalls(
  times: Record<string, Record<string, { calls: number; p50: number; p90: number }>>,
): string {
  return Object.entries(times)
    .flatMap(([service, operations]) =>
      Object.entries(operations)
        .filter(([, time]) => time.calls >= total / 10)
        .map(([operation, time]) => `${service} ${operation} ${time.p50}/${time.p90} ms`),
    )
    .join(', ');
}
