// POST /send-email/preview: handler --> preview job (nonprofits); writes and enqueues nothing

import { z } from 'zod';
import { nonprofitsFromEnv } from '../core/adapters';
import { readEnv } from '../core/env';
import { apiHandler, header, json, parseJsonBody } from '../core/http';
import { previewEmailRequest, readIdempotencyKey } from '../core/jobs/job';
import { type PreviewJobDependencies, previewJob } from '../core/jobs/preview-job';
import type { RenderSettings } from '../core/jobs/render-email';

export const makePreviewEmail = (deps: PreviewJobDependencies & { settings: RenderSettings }) =>
  apiHandler(async (event) => {
    const request = parseJsonBody(event, previewEmailRequest);
    // Checked for its form, as /send-email checks it; a preview stores no job for it to name.
    readIdempotencyKey(header(event, 'idempotency-key'));
    return json(200, await previewJob(deps, request, deps.settings));
  });

const env = readEnv({
  MAX_RENDERED_EMAIL_BYTES: z.coerce.number().int().positive(),
  DEFAULT_SUBJECT: z.string().min(1),
});

export const handler = makePreviewEmail({
  nonprofits: nonprofitsFromEnv(),
  settings: { maxRenderedBytes: env.MAX_RENDERED_EMAIL_BYTES, defaultSubject: env.DEFAULT_SUBJECT },
});
