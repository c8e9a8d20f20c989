// POST /send-email/preview: handler --> preview job (nonprofits); writes and enqueues nothing

import { nonprofitsFromEnv, RENDER_SETTINGS } from '../core/adapters';
import { apiHandler, header, json, parseJsonBody } from '../core/http';
import { previewEmailRequest, readIdempotencyKey } from '../core/jobs/job';
import { type PreviewJobDependencies, previewJob } from '../core/jobs/preview-job';
import type { RenderSettings } from '../core/jobs/render-email';
import { readSettings } from '../core/settings';

export const makePreviewEmail = (deps: PreviewJobDependencies & { settings: RenderSettings }) =>
  apiHandler(async (event) => {
    const request = parseJsonBody(event, previewEmailRequest);
    // Checked for its form, as /send-email checks it; a preview stores no job for it to name.
    readIdempotencyKey(header(event, 'idempotency-key'));
    return json(200, await previewJob(deps, request, deps.settings));
  });

export const handler = makePreviewEmail({
  nonprofits: nonprofitsFromEnv(),
  settings: readSettings(RENDER_SETTINGS),
});
