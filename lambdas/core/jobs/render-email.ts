import type { Nonprofit } from '../nonprofits/nonprofit';
import { renderTemplate, singleLine, type TemplatePart } from '../templates/template';

export interface RenderSettings {
  /** The largest rendered email, subject and body in UTF-8 bytes; a larger one fails its recipient. */
  maxRenderedBytes: number;
  /** The subject of a job submitted without one. */
  defaultSubject: string;
}

/**
 * One nonprofit's email from a job's compiled templates, as the consumer sends it and the preview
 * shows it. Stored values may predate the check on control characters: in a subject (a header) they
 * become spaces. An email over the size limit is `tooLarge`, with the reason.
 */
export function renderEmail(
  job: { body: TemplatePart[]; subject: TemplatePart[] | null },
  nonprofit: Pick<Nonprofit, 'name' | 'address' | 'email'>,
  settings: RenderSettings,
): { subject: string; body: string } | { tooLarge: string } {
  const values = { name: nonprofit.name, address: nonprofit.address, email: nonprofit.email };
  const rendered = job.subject
    ? renderTemplate(job.subject, {
        name: singleLine(values.name),
        address: singleLine(values.address),
        email: singleLine(values.email),
      })
    : '';
  // SES refuses an empty subject; a job accepted before blank subjects were refused gets the default.
  const subject = rendered.trim() === '' ? settings.defaultSubject : rendered;
  const body = renderTemplate(job.body, values);
  const bytes = Buffer.byteLength(subject, 'utf8') + Buffer.byteLength(body, 'utf8');
  if (bytes > settings.maxRenderedBytes) {
    return {
      tooLarge: `The rendered email is ${bytes} bytes, over the limit of ${settings.maxRenderedBytes} bytes.`,
    };
  }
  return { subject, body };
}
