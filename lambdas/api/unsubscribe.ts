// GET|POST /unsubscribe?token=: handler --> signing secret (Secrets Manager), suppression list and jobs (DynamoDB)
import { eventOutboxFromEnv, jobsFromEnv, signingSecretFromEnv, suppressionsFromEnv } from '../core/adapters';
import { ValidationError } from '../core/errors';
import { type ApiResult, apiHandler, parseQuery } from '../core/http';
import type { JobStore } from '../core/jobs/job-store';
import type { SuppressionList } from '../core/suppressions/repository';
import {
  type SigningSecret,
  unsubscribeQuery,
  verifyUnsubscribeToken,
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
  secret: SigningSecret;
}

/**
 * The link in every email (RFC 8058). `GET` shows the address and one button (mail scanners follow
 * links, so a GET changes nothing); `POST`, from that button or from the mailbox provider's
 * one-click request, suppresses the address and answers 200 whatever the body. A token this
 * deployment did not sign, whole, is a 400 and changes nothing.
 */
export const makeUnsubscribe = ({ suppressions, jobs, secret }: UnsubscribeDependencies) =>
  apiHandler(async (event) => {
    const { token } = parseQuery(event, unsubscribeQuery);
    const claim = verifyUnsubscribeToken(await secret.get(), token);
    if (!claim) {
      throw new ValidationError('Invalid unsubscribe link', [
        {
          field: 'query.token',
          message: 'Not a link this service sent, or not all of it: copy the whole link',
        },
      ]);
    }
    const address = escapeHtml(claim.email);
    if (event.httpMethod === 'GET') {
      return page(
        'Unsubscribe',
        `<h1>Unsubscribe</h1><p>Stop emails to <strong>${address}</strong>?</p><form method="post" action="?token=${encodeURIComponent(token)}"><button type="submit">Unsubscribe</button></form>`,
      );
    }
    // The sender of the job the email came with; a job since deleted leaves the key unknown.
    const apiKeyId = claim.apiKeyId ?? (claim.jobId ? (await jobs.get(claim.jobId))?.api_key_id : undefined);
    await suppressions.add({
      email: claim.email,
      reason: 'unsubscribed',
      ...(claim.jobId ? { job_id: claim.jobId } : {}),
      ...(apiKeyId ? { api_key_id: apiKeyId } : {}),
    });
    return page(
      'Unsubscribed',
      `<h1>Unsubscribed</h1><p>No more emails will be sent to <strong>${address}</strong>.</p>`,
    );
  });

export const handler = makeUnsubscribe({
  suppressions: suppressionsFromEnv(eventOutboxFromEnv()),
  jobs: jobsFromEnv(),
  secret: signingSecretFromEnv(),
});
