import type { Nonprofit } from '../nonprofits/nonprofit';
import { type EmailParts, type Sender, withFooter, worstCaseFooterBytes } from '../templates/footer';
import { renderHtmlTemplate } from '../templates/html';
import { renderTemplate, singleLine, type TemplatePart } from '../templates/template';

export interface RenderSettings extends Sender {
  /** The largest rendered email, subject, parts and footer in UTF-8 bytes; a larger one fails its recipient. */
  maxRenderedBytes: number;
  /** The subject of a job submitted without one. */
  defaultSubject: string;
}

/** A job's templates, compiled. */
export interface CompiledTemplates {
  body: TemplatePart[];
  html: TemplatePart[] | null;
  subject: TemplatePart[] | null;
}

/** One nonprofit's email, before each reader's footer: the subject, the text part and the HTML part (if any). */
export interface RenderedBody extends EmailParts {
  subject: string;
}

/**
 * One nonprofit's email from a job's compiled templates, as the consumer sends it and the preview
 * shows it. In the HTML part every value is escaped (a name is text, never markup); the text part
 * has them as they are. Stored values may predate the check on control characters: in a subject (a
 * header) they become spaces. An email over the size limit with the longest footer is `tooLarge`.
 */
export function renderEmail(
  job: CompiledTemplates,
  nonprofit: Pick<Nonprofit, 'name' | 'address' | 'email'>,
  settings: RenderSettings,
): RenderedBody | { tooLarge: string } {
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
  const text = renderTemplate(job.body, values);
  const html = job.html ? renderHtmlTemplate(job.html, values) : undefined;
  const bytes =
    Buffer.byteLength(subject, 'utf8') +
    Buffer.byteLength(text, 'utf8') +
    (html === undefined ? 0 : Buffer.byteLength(html, 'utf8')) +
    worstCaseFooterBytes(settings, html !== undefined);
  if (bytes > settings.maxRenderedBytes) {
    return {
      tooLarge: `The rendered email is ${bytes} bytes with its footer, over the limit of ${settings.maxRenderedBytes} bytes.`,
    };
  }
  return { subject, text, ...(html === undefined ? {} : { html }) };
}

/**
 * The link the footer shows where an email is kept or previewed rather than sent: each reader's
 * message carries its own signed link, and a stored one would let whoever reads the job's emails
 * unsubscribe its readers. `.invalid` is reserved (RFC 2606): it never leads anywhere.
 */
export const STORED_LINK = 'https://unsubscribe.invalid/each-reader-gets-their-own-link';

/** The email as one reader gets it: the body with that reader's footer and unsubscribe link. */
export function forReader(
  body: RenderedBody,
  settings: Sender,
  reader: string,
  link: string | undefined,
): RenderedBody {
  return { subject: body.subject, ...withFooter(body, settings, reader, link) };
}
