// SQS event source on the person requests' queue: worker --> registry, suppression list, ledger (DynamoDB) + the queue
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import {
  auditTrailFromEnv,
  eraserFromEnv,
  jobsFromEnv,
  ledgerSearchFromEnv,
  nonprofitsFromEnv,
  personRequestQueueFromEnv,
  personRequestsFromEnv,
  suppressionsFromEnv,
} from '../core/adapters';
import { personRequestMessage, STEP_MARGIN_MS } from '../core/people/person-requests';
import {
  type PersonRequestWorkerDependencies,
  runPersonRequestStep,
} from '../core/people/run-person-request';
import { readSettings, SETTING } from '../core/settings';
import { logLine, workerHandler } from './support';

/**
 * One step per message (the event source's batch size is 1), so a step has the invocation's time
 * to itself. A message that is not a step is dropped and logged: handing it over again would not
 * make it one. A step that fails goes back to the queue, and after five tries to its dead letters.
 */
export const makePersonRequestWorker = (deps: PersonRequestWorkerDependencies) =>
  workerHandler(async (event: SQSEvent, context): Promise<SQSBatchResponse> => {
    const failures: { itemIdentifier: string }[] = [];
    for (const record of event.Records) {
      let body: unknown;
      try {
        body = JSON.parse(record.body);
      } catch {
        body = undefined;
      }
      const message = personRequestMessage.safeParse(body);
      if (!message.success) {
        deps.log('ERROR', 'Dropped a message that is not a person request step', {
          message_id: record.messageId,
        });
        continue;
      }
      try {
        await runPersonRequestStep(
          deps,
          message.data,
          () => context.getRemainingTimeInMillis() > STEP_MARGIN_MS,
        );
      } catch (error) {
        deps.log('ERROR', 'A person request step failed; it goes back to the queue', {
          request_id: message.data.request_id,
          step: message.data.step,
          error: error instanceof Error ? error.message : String(error),
        });
        failures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures: failures };
  });

export const handler = makePersonRequestWorker({
  requests: personRequestsFromEnv({ audit: auditTrailFromEnv() }),
  queue: personRequestQueueFromEnv(),
  ledger: ledgerSearchFromEnv(),
  nonprofits: nonprofitsFromEnv(),
  suppressions: suppressionsFromEnv(),
  erasure: {
    eraser: eraserFromEnv(),
    jobs: jobsFromEnv(),
    recheckSeconds: readSettings({ seconds: SETTING.erasureRecheckSeconds }).seconds,
  },
  log: logLine,
});
