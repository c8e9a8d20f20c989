import type { NonprofitRepository } from '../nonprofits/repository';
import { compileTemplate } from '../templates/template';
import { requireRegistered } from './accept-job';
import {
  checkRenderedSize,
  checkSendAt,
  type PreviewEmailRequest,
  readPreviewFor,
  worstCaseRenderedBytes,
} from './job';
import { answerBytes, MAX_PAGE_BYTES } from './job-emails';
import { forReader, type RenderSettings, renderEmail, STORED_LINK } from './render-email';

export interface PreviewJobDependencies {
  nonprofits: Pick<NonprofitRepository, 'getMany'>;
}

/** One email as the job would send it now. */
export interface EmailPreview {
  to: string;
  cc: string[];
  subject: string | null;
  /** The text part with the footer the recipient's message carries (its link stands for the reader's own). */
  body: string | null;
  /** The HTML part, footer included, as a string; null for a text-only job. */
  html: string | null;
  /** Why this email could not be rendered (a stored value longer than its field allows made it too large). */
  error?: string;
}

export interface JobPreview {
  total_emails: number;
  /** The most bytes (subject, parts and footer) any email of the job can render to, and the deployment's limit. */
  worst_case_bytes: number;
  max_rendered_email_bytes: number;
  previews: EmailPreview[];
}

/**
 * `POST /send-email/preview`: the checks `/send-email` makes, in the same words (size at worst 400,
 * unknown recipients 404), then up to five emails rendered as they would be sent now, with the
 * nonprofits' current names and addresses. Nothing is written and nothing is enqueued.
 */
export async function previewJob(
  deps: PreviewJobDependencies,
  request: PreviewEmailRequest,
  settings: RenderSettings,
): Promise<JobPreview> {
  checkRenderedSize(request, settings);
  // A time /send-email would refuse is refused here too.
  if (request.send_at !== undefined) checkSendAt(request.send_at, new Date());
  const chosen = readPreviewFor(request);
  const nonprofits = await requireRegistered(deps.nonprofits, request.emails);
  const compiled = {
    body: compileTemplate(request.template),
    html: request.html === undefined ? null : compileTemplate(request.html),
    subject: request.subject === undefined ? null : compileTemplate(request.subject),
  };
  const cc = request.cc ?? [];
  let bytes = 0;
  const previews = chosen.map((to, index): EmailPreview => {
    const nonprofit = nonprofits.get(to);
    // requireRegistered answered for every recipient, and preview_for names only recipients.
    if (!nonprofit) throw new Error(`No nonprofit for ${to} after the check`);
    const rendered = renderEmail(compiled, nonprofit, settings);
    // The worst case was checked: a stored value longer than its field allows could still overflow.
    if ('tooLarge' in rendered)
      return { to, cc, subject: '', body: '', html: null, error: rendered.tooLarge };
    const { subject, text, html } = forReader(rendered, settings, to, STORED_LINK);
    const preview = { to, cc, subject, body: text, html: html ?? null };
    // Five emails at the deployment's largest size could pass Lambda's 6 MB answer: those past the
    // bound are named, not shown (the first always is).
    bytes += answerBytes(preview);
    if (bytes > MAX_PAGE_BYTES && index > 0)
      return {
        to,
        cc,
        subject,
        body: null,
        html: null,
        error: 'Not shown: the previews before it fill the answer; preview it alone with preview_for',
      };
    return preview;
  });
  return {
    total_emails: request.emails.length,
    worst_case_bytes: worstCaseRenderedBytes(request, settings),
    max_rendered_email_bytes: settings.maxRenderedBytes,
    previews,
  };
}
