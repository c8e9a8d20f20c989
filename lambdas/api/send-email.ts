// POST /send-email: handler --> accept job (nonprofits, job store, email queue)

import { MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  addressKeysFromEnv,
  emailQueueFromEnv,
  eventOutboxFromEnv,
  jobContentsFromEnv,
  jobsFromEnv,
  nonprofitsFromEnv,
  RENDER_SETTINGS,
  recipientQuotaFromEnv,
  suppressionsFromEnv,
} from '../core/adapters';
import { apiHandler, callerApiKeyId, header, json, parseJsonBody } from '../core/http';
import { type AcceptJobDependencies, acceptJob } from '../core/jobs/accept-job';
import { checkRenderedSize, jobVolume, readIdempotencyKey, sendEmailRequest } from '../core/jobs/job';
import type { RenderSettings } from '../core/jobs/render-email';
import { METRIC } from '../core/observability/metric-names';
import { logger, metrics } from '../core/observability/telemetry';
import { readSettings } from '../core/settings';

export interface SendEmailDependencies extends AcceptJobDependencies {
  /** How emails render: the largest a job's may reach at worst, and the footer each carries. */
  settings: RenderSettings;
}

export const makeSendEmail = ({ settings, ...deps }: SendEmailDependencies) =>
  apiHandler(async (event, context) => {
    const request = parseJsonBody(event, sendEmailRequest);
    const key = readIdempotencyKey(header(event, 'idempotency-key'));
    checkRenderedSize(request, settings);
    const { job, replayed } = await acceptJob(deps, {
      apiKeyId: callerApiKeyId(event),
      request,
      idempotencyKey: key,
      enqueueDeadline: new Date(Date.now() + context.getRemainingTimeInMillis()),
    });
    logger.appendKeys({ job_id: job.job_id });
    if (!replayed) {
      metrics.addMetric(METRIC.jobsAccepted, MetricUnit.Count, 1);
      // Every copy is a recipient to SES: cc addresses count once per email.
      metrics.addMetric(METRIC.recipientsAccepted, MetricUnit.Count, jobVolume(request));
      logger.info('Job accepted', { total_emails: job.total_emails });
    }
    return json(
      202,
      {
        job_id: job.job_id,
        status: job.status,
        total_emails: job.total_emails,
        ...(job.send_at === undefined ? {} : { send_at: job.send_at }),
        message: replayed
          ? 'This Idempotency-Key already submitted this job; its current status is shown.'
          : job.send_at === undefined
            ? `Job accepted: ${job.total_emails} emails queued.`
            : `Job scheduled: ${job.total_emails} emails, sent from ${job.send_at}.`,
      },
      { location: `/jobs/${job.job_id}`, ...(replayed ? { 'idempotent-replayed': 'true' } : {}) },
    );
  });

export const handler = makeSendEmail({
  settings: readSettings(RENDER_SETTINGS),
  jobs: jobsFromEnv(eventOutboxFromEnv()),
  contents: jobContentsFromEnv(),
  nonprofits: nonprofitsFromEnv(),
  queue: emailQueueFromEnv(),
  quota: recipientQuotaFromEnv(),
  erased: suppressionsFromEnv(undefined, undefined, addressKeysFromEnv()),
  onEnqueueFailure: (job, error) =>
    logger.error('Job recorded but not enqueued; the sweeper will enqueue it', {
      job_id: job.job_id,
      error: error instanceof Error ? error : String(error),
    }),
  onRefundFailure: (apiKeyId, recipients, error) =>
    logger.warn('Could not give recipients back to the quota; they stay counted today', {
      api_key_id: apiKeyId,
      recipients,
      error: error instanceof Error ? error : String(error),
    }),
});
