import {
  type Placeholder,
  renderTemplate,
  type TemplatePart,
  type TemplateProblem,
  type TemplateValues,
  worstCaseBytes,
} from './template';

/**
 * HTML email templates are data, like text ones: the same placeholders (`{name}`, `{address}`,
 * `{email}`) and `{{`/`}}` for literal braces, so CSS braces in a `<style>` block are written
 * `p {{ margin: 0 }}`. Every value is HTML-escaped where it lands. What would make a template code
 * is refused when the job is submitted, with its position: scripts, event handlers, script URLs.
 * Mail clients strip these anyway; refusing keeps our own previews (and anyone who opens the stored
 * HTML in a browser) safe. This is a scanner, not an HTML parser: it reads tags and their
 * attributes in one pass, in linear time, which is all these checks need.
 */

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes `& < > " '`: the value is text in element content and in quoted attribute values alike. */
export const escapeHtml = (value: string): string =>
  value.replace(/[&<>"']/g, (character) => ESCAPES[character] ?? character);

/** Renders an HTML template: the template's own text as written, every value escaped. */
export function renderHtmlTemplate(parts: readonly TemplatePart[], values: TemplateValues): string {
  return renderTemplate(parts, {
    name: escapeHtml(values.name),
    address: escapeHtml(values.address),
    email: escapeHtml(values.email),
  });
}

/**
 * The most UTF-8 bytes an HTML template can render to: a value's character takes at most 6 bytes
 * once escaped (`&quot;`; an escaped character is ASCII, and one never escaped takes at most 3).
 */
export function worstCaseHtmlBytes(
  parts: readonly TemplatePart[],
  maxLength: Readonly<Record<Placeholder, number>>,
): number {
  return worstCaseBytes(parts, maxLength, 6);
}

/**
 * Elements that run or load code, or send the reader's input elsewhere: `<script>`; frames and
 * plug-ins (`<iframe>`, `<frame>`, `<object>`, `<embed>`, `<applet>`); `<form>` (a phishing form in
 * the sender's name); `<base>` (it re-points every link); `<meta>` (a refresh that navigates away).
 */
const FORBIDDEN_ELEMENTS = new Set([
  'script',
  'iframe',
  'frame',
  'frameset',
  'object',
  'embed',
  'applet',
  'form',
  'base',
  'meta',
]);

/** Attributes whose value is a URL: a placeholder may not begin one (a stored value could make it `javascript:`). */
const URL_ATTRIBUTES = new Set([
  'href',
  'src',
  'action',
  'formaction',
  'background',
  'poster',
  'cite',
  'longdesc',
  'xlink:href',
  'srcset',
  'data',
  'codebase',
  'lowsrc',
  'dynsrc',
]);

/** The character references a script URL may hide behind: numeric ones, and the named ones browsers drop or map. */
const NAMED_REFERENCES: Record<string, string> = {
  colon: ':',
  tab: '\t',
  newline: '\n',
  lpar: '(',
  rpar: ')',
  sol: '/',
  bsol: '\\',
  amp: '&',
};

/** An attribute value as a browser reads it: character references decoded. */
function decodeReferences(value: string): string {
  return value.replace(/&(?:#x([0-9a-f]{1,6})|#(\d{1,7})|([a-z]{2,10}));?/gi, (whole, hex, decimal, name) => {
    if (hex) return String.fromCodePoint(Math.min(Number.parseInt(hex, 16), 0x10ffff));
    if (decimal) return String.fromCodePoint(Math.min(Number.parseInt(decimal, 10), 0x10ffff));
    return NAMED_REFERENCES[String(name).toLowerCase()] ?? whole;
  });
}

/** What a browser compares with a scheme: tabs, line breaks and other controls and spaces are dropped. */
const squeezed = (value: string) => value.replace(/[\p{Cc} ]/gu, '').toLowerCase();

/** Why a URL (decoded) is code, or undefined: `javascript:`, `vbscript:`, and `data:` other than images. */
function scriptUrl(url: string): string | undefined {
  const plain = squeezed(url);
  if (plain.startsWith('javascript:')) return 'a javascript: URL';
  if (plain.startsWith('vbscript:')) return 'a vbscript: URL';
  if (plain.startsWith('data:') && !plain.startsWith('data:image/')) return 'a data: URL other than an image';
  return undefined;
}

/** CSS that runs code in old clients: `expression(…)`, `url(javascript:…)`, `behavior:`, `-moz-binding`. */
function scriptInCss(css: string): string | undefined {
  const plain = squeezed(decodeReferences(css)).replace(/\\/g, '');
  if (plain.includes('expression(')) return 'a CSS expression()';
  if (/url\(["']?(javascript|vbscript):/.test(plain)) return 'a script URL in CSS';
  if (plain.includes('behavior:') || plain.includes('-moz-binding')) return 'a CSS behavior or binding';
  return undefined;
}

interface Attribute {
  name: string;
  /** The raw value (undefined for a bare attribute), and where it starts in the source. */
  value?: string;
  valueAt: number;
  at: number;
}

/** Reads the attributes of a tag from `from` (just past its name) to its `>`; answers them and the index after the tag. */
function readAttributes(source: string, from: number): { attributes: Attribute[]; end: number } {
  const attributes: Attribute[] = [];
  let index = from;
  const length = source.length;
  const isSpace = (character: string | undefined) => character !== undefined && /[\s/]/.test(character);
  while (index < length) {
    while (index < length && isSpace(source[index])) index++;
    if (index >= length || source[index] === '>') return { attributes, end: index + 1 };
    const at = index;
    // A name runs to whitespace, `/`, `>` or `=` (an attribute name may start with `=` in HTML; rare, taken as a name).
    index++;
    while (index < length && !/[\s/>=]/.test(source[index] as string)) index++;
    const name = source.slice(at, index).toLowerCase();
    while (index < length && /\s/.test(source[index] as string)) index++;
    if (source[index] !== '=') {
      attributes.push({ name, at, valueAt: index });
      continue;
    }
    index++;
    while (index < length && /\s/.test(source[index] as string)) index++;
    const quote = source[index];
    if (quote === '"' || quote === "'") {
      const close = source.indexOf(quote, index + 1);
      const end = close === -1 ? length : close;
      attributes.push({ name, at, value: source.slice(index + 1, end), valueAt: index + 1 });
      index = end + 1;
    } else {
      const start = index;
      while (index < length && !/[\s>]/.test(source[index] as string)) index++;
      attributes.push({ name, at, value: source.slice(start, index), valueAt: start });
    }
  }
  return { attributes, end: length };
}

const problem = (position: number, what: string): TemplateProblem => ({
  position,
  message: `${what} at position ${position} is not allowed: HTML templates may not hold scripts, event handlers or script URLs`,
});

/**
 * The HTML-specific refusals of a template, each with its position: forbidden elements, event-handler
 * attributes (`onclick=`), script URLs in attributes (also written with character references or
 * split by tabs), script in CSS, and a placeholder that begins a URL attribute's value. Comments and
 * the text between tags are skipped, but a `<script` anywhere, in a comment too, is refused.
 */
export function htmlTemplateProblems(source: string): TemplateProblem[] {
  const problems: TemplateProblem[] = [];
  const lower = source.toLowerCase();
  // Anywhere, comments included: Outlook's conditional comments hold markup that some clients run.
  for (let at = lower.indexOf('<script'); at !== -1; at = lower.indexOf('<script', at + 1)) {
    problems.push(problem(at, '<script>'));
  }
  let index = 0;
  while (index < source.length) {
    const open = source.indexOf('<', index);
    if (open === -1) break;
    if (source.startsWith('<!--', open)) {
      const close = source.indexOf('-->', open + 4);
      index = close === -1 ? source.length : close + 3;
      continue;
    }
    const nameMatch = /^<\/?([a-zA-Z][a-zA-Z0-9:-]*)/.exec(source.slice(open, open + 64));
    if (!nameMatch) {
      index = open + 1;
      continue;
    }
    const element = (nameMatch[1] as string).toLowerCase();
    const closing = source[open + 1] === '/';
    if (!closing && element !== 'script' && FORBIDDEN_ELEMENTS.has(element))
      problems.push(problem(open, `<${element}>`));
    const { attributes, end } = readAttributes(source, open + nameMatch[0].length);
    if (!closing) {
      for (const attribute of attributes) {
        if (attribute.name.startsWith('on')) {
          problems.push(problem(attribute.at, `the event-handler attribute ${attribute.name}`));
          continue;
        }
        if (attribute.value === undefined) continue;
        if (attribute.name === 'style') {
          const css = scriptInCss(attribute.value);
          if (css) problems.push(problem(attribute.valueAt, css));
          continue;
        }
        if (!URL_ATTRIBUTES.has(attribute.name)) continue;
        const url = scriptUrl(decodeReferences(attribute.value));
        if (url) {
          problems.push(problem(attribute.valueAt, url));
          continue;
        }
        if (/^\s*\{[a-z]+\}/.test(attribute.value)) {
          problems.push({
            position: attribute.valueAt,
            message: `a placeholder beginning the URL of ${attribute.name} at position ${attribute.valueAt} is not allowed: a stored value could make it a script link; begin it with the scheme, as in href="mailto:{email}"`,
          });
        }
      }
    }
    // A <style> block: its CSS, to its end tag.
    if (!closing && element === 'style') {
      const close = lower.indexOf('</style', end);
      const css = source.slice(end, close === -1 ? source.length : close);
      const found = scriptInCss(css);
      if (found) problems.push(problem(end, found));
      index = close === -1 ? source.length : close;
      continue;
    }
    index = end;
  }
  return problems.sort((a, b) => a.position - b.position);
}
