// GET|POST /unsubscribe?token=: handler --> signing secret (Secrets Manager), suppression list and jobs (DynamoDB)
import {
  addressKeysFromEnv,
  auditTrailFromEnv,
  deliveriesFromEnv,
  eventOutboxFromEnv,
  jobsFromEnv,
  signingSecretFromEnv,
  suppressionsFromEnv,
} from '../core/adapters';
import { ValidationError } from '../core/errors';
import { type ApiResult, apiHandler, parseQuery } from '../core/http';
import type { FeedbackLedger } from '../core/jobs/deliveries';
import type { JobStore } from '../core/jobs/job-store';
import { logger } from '../core/observability/telemetry';
import type { SuppressionList } from '../core/suppressions/repository';
import {
  maskAddress,
  openUnsubscribeToken,
  type SigningSecret,
  type UnsubscribeClaim,
  unsubscribeQuery,
} from '../core/suppressions/unsubscribe-token';
import { escapeHtml } from '../core/templates/html';

/** A small page of its own: no script, no external resource, a form that posts only here. */
function page(title: string, content: string): ApiResult {
  return {
    statusCode: 200,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy':
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
    },
    body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${title}</title><style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}button{font-size:1rem;padding:.5rem 1rem}</style></head><body>${content}</body></html>`,
  };
}

export interface UnsubscribeDependencies {
  suppressions: Pick<SuppressionList, 'add'>;
  /** The job the link came with: its API key is recorded as the suppression's cause. */
  jobs: Pick<JobStore, 'get'>;
  /** The ledger entry of the email whose link was used: it notes the unsubscribe, and its job counts it. */
  ledger: FeedbackLedger;
  secret: SigningSecret;
  now?: () => Date;
}

/**
 * Notes the unsubscribe on the ledger entry of the email whose link was used (once per reader,
 * however often the link is used), and counts it on the job when this click suppressed the reader
 * (each reader once, whichever of their copies' links they use). The suppression is what matters to the
 * person and is made already: a failed note is logged, not answered as an error they would see.
 */
async function noteOnLedger(
  ledger: FeedbackLedger,
  jobId: string,
  claim: UnsubscribeClaim,
  { at, countOnJob }: { at: Date; countOnJob: boolean },
) {
  const recipient = claim.recipient ?? claim.email;
  try {
    const noted = await ledger.recordFeedback(jobId, recipient, {
      kind: 'unsubscribe',
      feedbackId: `unsubscribe:${claim.email}`,
      detail:
        recipient === claim.email
          ? 'Unsubscribed by the link in this email'
          : `Unsubscribed by the link in the copy to ${claim.email}`,
      at: at.toISOString(),
      countOnJob,
    });
    // A job or email since gone, or noted before: nothing to do.
    if (noted === 'pending')
      logger.info('Unsubscribe not noted: the email is still being recorded', { job_id: jobId });
  } catch (error) {
    logger.error('Unsubscribe not noted on its email', { job_id: jobId, error });
  }
}

/**
 * The link in every email (RFC 8058). `GET` shows the address, masked, and one button (mail scanners follow
 * links, so a GET changes nothing); `POST`, from that button or from the mailbox provider's
 * one-click request, suppresses the address and answers 200 whatever the body. A token this
 * deployment did not make, whole, under the current or previous version of its secret, is a 400
 * and changes nothing.
 */
export const makeUnsubscribe = ({
  suppressions,
  jobs,
  ledger,
  secret,
  now = () => new Date(),
}: UnsubscribeDependencies) =>
  apiHandler(async (event) => {
    const { token } = parseQuery(event, unsubscribeQuery);
    const claim = await openUnsubscribeToken(secret, token);
    if (!claim) {
      throw new ValidationError('Invalid unsubscribe link', [
        {
          field: 'query.token',
          message: 'Not a link this service sent, or not all of it: copy the whole link',
        },
      ]);
    }
    const address = escapeHtml(maskAddress(claim.email));
    if (event.httpMethod === 'GET') {
      return page(
        'Unsubscribe',
        `<h1>Unsubscribe</h1><p>Stop emails to <strong>${address}</strong>?</p><form method="post" action="?token=${encodeURIComponent(token)}"><button type="submit">Unsubscribe</button></form>`,
      );
    }
    // The sender of the job the email came with; a job since deleted leaves the key unknown.
    const apiKeyId = claim.apiKeyId ?? (claim.jobId ? (await jobs.get(claim.jobId))?.api_key_id : undefined);
    const { created, suppression } = await suppressions.add({
      email: claim.email,
      reason: 'unsubscribed',
      ...(claim.jobId ? { job_id: claim.jobId } : {}),
      ...(apiKeyId ? { api_key_id: apiKeyId } : {}),
    });
    // An erased address's link (from an email sent before the erasure) leaves no note naming it.
    if (claim.jobId && suppression.reason !== 'erased')
      await noteOnLedger(ledger, claim.jobId, claim, { at: now(), countOnJob: created });
    return page(
      'Unsubscribed',
      `<h1>Unsubscribed</h1><p>No more emails will be sent to <strong>${address}</strong>.</p>`,
    );
  });

export const handler = makeUnsubscribe({
  suppressions: suppressionsFromEnv(eventOutboxFromEnv(), auditTrailFromEnv(), addressKeysFromEnv()),
  jobs: jobsFromEnv(),
  // No outbox: the unsubscribe is told once, with the suppression.
  ledger: deliveriesFromEnv(),
  secret: signingSecretFromEnv(),
});
