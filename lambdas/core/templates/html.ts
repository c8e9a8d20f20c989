import {
  type Placeholder,
  placeholderPositions,
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
 * Elements refused, and why: they run or load code (`<script>`, frames, plug-ins), send the reader's
 * input elsewhere (`<form>`), re-point every link (`<base>`), are parsed by other rules than HTML's
 * (`<svg>`, `<math>`: a `<style>` inside them holds markup), or hold what follows them as text or
 * inert content and so could swallow the footer (`<textarea>`, `<xmp>`, `<plaintext>`, `<template>`…).
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
  'svg',
  'math',
  'textarea',
  'xmp',
  'plaintext',
  'template',
  'noembed',
  'noframes',
]);

/** Elements whose content is text up to their end tag: `<style>` (CSS) and `<title>`. */
const TEXT_ELEMENTS = new Set(['style', 'title']);

/**
 * Containers a sender could leave open so that the footer, inserted before `</body>`, lands inside
 * (and inherits a `display:none`). HTML never closes these by itself, so a missing end tag is one.
 */
const CONTAINERS = new Set(['div', 'span', 'table', 'center', 'font', 'a']);

/** `<meta http-equiv>` values email templates use; any other (a `refresh` that navigates away) is refused. */
const META_HTTP_EQUIV = new Set(['content-type', 'x-ua-compatible', 'content-language']);

/** Attributes whose value is a URL: a value may not supply its scheme (a stored value could make it `javascript:`). */
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

/** A numeric reference as a browser reads it, however many leading zeros; out of range is U+FFFD. */
const codePoint = (digits: string, radix: number) => {
  const value = Number.parseInt(digits.replace(/^0+/, '').slice(0, 8) || '0', radix);
  return value === 0 || value > 0x10ffff ? '\uFFFD' : String.fromCodePoint(value);
};

/** An attribute value as a browser reads it: character references decoded. */
function decodeReferences(value: string): string {
  return value.replace(/&(?:#x([0-9a-f]+)|#(\d+)|([a-z]{2,10}));?/gi, (whole, hex, decimal, name) => {
    if (hex) return codePoint(hex, 16);
    if (decimal) return codePoint(decimal, 10);
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
  // `behavior` as a property of its own, not the end of `scroll-behavior`.
  if (/(?:^|[^a-z-])(?:-ms-)?behavior:/.test(plain) || plain.includes('-moz-binding'))
    return 'a CSS behavior or binding';
  return undefined;
}

/**
 * Whether a value placed after this part of a URL attribute (decoded) can no longer choose the
 * URL's scheme: a scheme is already written, or the URL is relative (a path, query or fragment).
 */
const schemeWritten = (prefix: string) => /^[/?#.]|:/.test(squeezed(decodeReferences(prefix)));

interface Attribute {
  name: string;
  /** The raw value (undefined for a bare attribute), where it starts in the source, and whether it is quoted. */
  value?: string;
  valueAt: number;
  quoted: boolean;
  at: number;
}

/** Reads the attributes of a tag from `from` (just past its name) to its `>`: them, and the index after the tag (-1: no `>`). */
function readAttributes(source: string, from: number): { attributes: Attribute[]; end: number } {
  const attributes: Attribute[] = [];
  let index = from;
  const length = source.length;
  const isSpace = (character: string | undefined) => character !== undefined && /[\s/]/.test(character);
  while (index < length) {
    while (index < length && isSpace(source[index])) index++;
    if (index >= length) break;
    if (source[index] === '>') return { attributes, end: index + 1 };
    const at = index;
    // A name runs to whitespace, `/`, `>` or `=` (an attribute name may start with `=` in HTML; rare, taken as a name).
    index++;
    while (index < length && !/[\s/>=]/.test(source[index] as string)) index++;
    const name = source.slice(at, index).toLowerCase();
    while (index < length && /\s/.test(source[index] as string)) index++;
    if (source[index] !== '=') {
      attributes.push({ name, at, valueAt: index, quoted: false });
      continue;
    }
    index++;
    while (index < length && /\s/.test(source[index] as string)) index++;
    const quote = source[index];
    if (quote === '"' || quote === "'") {
      const close = source.indexOf(quote, index + 1);
      if (close === -1) break;
      attributes.push({ name, at, value: source.slice(index + 1, close), valueAt: index + 1, quoted: true });
      index = close + 1;
    } else {
      const start = index;
      while (index < length && !/[\s>]/.test(source[index] as string)) index++;
      attributes.push({ name, at, value: source.slice(start, index), valueAt: start, quoted: false });
    }
  }
  return { attributes, end: -1 };
}

/** Where an attribute's value ends in the source (just past the name for a bare one). */
const valueEnd = (attribute: Attribute) => attribute.valueAt + (attribute.value?.length ?? 0);

const problem = (position: number, what: string): TemplateProblem => ({
  position,
  message: `${what} at position ${position} is not allowed: HTML templates may not hold scripts, event handlers or script URLs`,
});

const placeholderProblem = (position: number, where: string): TemplateProblem => ({
  position,
  message: `a placeholder ${where} at position ${position} is not allowed: values go in text and in quoted attribute values, as in <a href="mailto:{email}" title="{name}">`,
});

const unclosed = (position: number, what: string): TemplateProblem => ({
  position,
  message: `${what} opened at position ${position} is never closed: the footer would be inside it`,
});

/**
 * Finds the next `needle` at or after an index, remembering the last answer: a scan that asks for
 * increasing indexes reads the source once, even when the needle never comes (no quadratic time).
 */
function forwardFinder(source: string, needle: string) {
  let found = -2;
  return (from: number) => {
    if (found === -1 || found >= from) return found;
    found = source.indexOf(needle, from);
    return found;
  };
}

/** Where a comment that opens at `open` (`<!--`) ends, as HTML ends it (`<!-->` and `<!--->` end at once; `--!>` too); -1: never. */
function commentEnd(
  source: string,
  open: number,
  find: { dashes: (from: number) => number; bang: (from: number) => number },
): number {
  if (source.startsWith('<!-->', open)) return open + 5;
  if (source.startsWith('<!--->', open)) return open + 6;
  const dashes = find.dashes(open + 4);
  const bang = find.bang(open + 4);
  if (dashes === -1) return bang === -1 ? -1 : bang + 4;
  return bang === -1 || dashes < bang ? dashes + 3 : bang + 4;
}

/**
 * The HTML-specific refusals of a template, each with its position. It reads the source once, in
 * linear time, as a browser's tokenizer would split it (text, comments, tags and their attributes,
 * the text of `<style>` and `<title>`), and refuses:
 * - what runs code: `<script` anywhere (in comments too: Outlook's conditional comments hold markup
 *   some clients run), the elements above, `on*=` attributes, script URLs in URL attributes (also
 *   written with character references or split by tabs), script in CSS, `<meta http-equiv>` other than
 *   the content type's;
 * - a value where markup would read it as more than text: a placeholder is allowed in text, in
 *   `<title>`, and in a quoted attribute value (not `style`, not `srcset`, and in a URL only after its
 *   scheme: `mailto:{email}`, not `{address}` nor `java{name}`);
 * - what would hide the footer: a template that ends inside a comment, a tag or a `<style>`, a
 *   `<div>`-like container never closed, or `</body` anywhere but a real end tag. (Conditional comments'
 *   `<!--[if …]>` and `<![endif]-->` are read as the markers they are, and what is between them as markup.)
 */
export function htmlTemplateProblems(source: string): TemplateProblem[] {
  const problems: TemplateProblem[] = [];
  const lower = source.toLowerCase();
  for (let at = lower.indexOf('<script'); at !== -1; at = lower.indexOf('<script', at + 1)) {
    problems.push(problem(at, '<script>'));
  }
  const placeholders = placeholderPositions(source);
  const placeholderStarts = new Set(placeholders);
  let nextPlaceholder = 0;
  /** The placeholders in [from, to), each once, in order: the scan moves forward only. */
  const placeholdersIn = (from: number, to: number) => {
    const found: number[] = [];
    while (nextPlaceholder < placeholders.length && (placeholders[nextPlaceholder] as number) < to) {
      const at = placeholders[nextPlaceholder++] as number;
      if (at >= from) found.push(at);
    }
    return found;
  };
  const refusePlaceholders = (from: number, to: number, where: string) => {
    for (const at of placeholdersIn(from, to)) problems.push(placeholderProblem(at, where));
  };
  const bodyEnds = new Set<number>();
  /** The containers open so far, by name, each with where it opened. */
  const open = new Map<string, number[]>();
  const commentEnds = { dashes: forwardFinder(source, '-->'), bang: forwardFinder(source, '--!>') };
  /** Where the latest conditional comment ends for a browser: an end tag before it is inert there. */
  let conditionalUntil = -1;
  const declarationEnd = (lt: number) => {
    const close = source.indexOf('>', lt);
    return close === -1 ? -1 : close + 1;
  };
  /**
   * What the scan steps over at `lt`, to where (-1: never closed), or undefined for a tag or text.
   * A conditional comment's markers (`<!--[if …]>`, `<![endif]-->`) are stepped over and what is
   * between them read as markup (Outlook renders it); for a browser it is all one comment, which
   * must end, and in which the body's end may not be.
   */
  const skippedMarkup = (lt: number): { end: number; what: string } | undefined => {
    if (source.startsWith('<!--[if', lt)) {
      const comment = commentEnd(source, lt, commentEnds);
      if (comment !== -1) conditionalUntil = comment;
      return { end: comment === -1 ? -1 : declarationEnd(lt), what: 'A conditional comment' };
    }
    if (source.startsWith('<![endif]', lt)) return { end: declarationEnd(lt), what: 'A conditional comment' };
    if (source.startsWith('<!--', lt)) return { end: commentEnd(source, lt, commentEnds), what: 'A comment' };
    // `<!DOCTYPE …>` and other declarations: to the next `>`.
    if (source[lt + 1] === '!' || source[lt + 1] === '?')
      return { end: declarationEnd(lt), what: 'A declaration' };
    return undefined;
  };
  let index = 0;
  while (index < source.length) {
    const lt = source.indexOf('<', index);
    if (lt === -1) break;
    // Text before the tag: values are text here, escaped.
    placeholdersIn(index, lt);
    const skipped = skippedMarkup(lt);
    if (skipped) {
      if (skipped.end === -1) {
        problems.push(unclosed(lt, skipped.what));
        break;
      }
      refusePlaceholders(lt, skipped.end, `in ${skipped.what.toLowerCase()}`);
      index = skipped.end;
      continue;
    }
    const nameMatch = /^<(\/?)([a-zA-Z][^\s/>]*)/.exec(source.slice(lt, lt + 64));
    if (!nameMatch) {
      // A `<` that begins no tag is text, unless a value follows it: the value would name the tag.
      const named = source[lt + 1] === '/' ? lt + 2 : lt + 1;
      if (placeholderStarts.has(named)) problems.push(placeholderProblem(named, 'naming a tag'));
      index = lt + 1;
      continue;
    }
    const closing = nameMatch[1] === '/';
    const element = (nameMatch[2] as string).toLowerCase();
    const { attributes, end } = readAttributes(source, lt + nameMatch[0].length);
    if (end === -1) {
      problems.push(unclosed(lt, `The tag <${closing ? '/' : ''}${element}>`));
      break;
    }
    if (closing) {
      refusePlaceholders(lt, end, 'in an end tag');
      // Inside a conditional comment the end tag is Outlook's alone: for a browser, a comment.
      if (element === 'body' && lt >= conditionalUntil) bodyEnds.add(lt);
      open.get(element)?.pop();
      index = end;
      continue;
    }
    if (element !== 'script' && FORBIDDEN_ELEMENTS.has(element)) problems.push(problem(lt, `<${element}>`));
    problems.push(...startTagProblems(element, lt, attributes));
    // Placeholders and quoted values both come in source order: one walk pairs them.
    let valueIndex = 0;
    for (const at of placeholdersIn(lt, end)) {
      while (valueIndex < attributes.length && valueEnd(attributes[valueIndex] as Attribute) <= at)
        valueIndex++;
      const attribute = attributes[valueIndex];
      if (!attribute?.quoted || at < attribute.valueAt)
        problems.push(placeholderProblem(at, 'in a tag outside a quoted attribute value'));
      else if (attribute.name === 'style' || attribute.name === 'srcset')
        problems.push(placeholderProblem(at, `in the ${attribute.name} attribute`));
      else if (URL_ATTRIBUTES.has(attribute.name) && !schemeWritten(source.slice(attribute.valueAt, at)))
        problems.push(placeholderProblem(at, `before the scheme of the ${attribute.name} URL`));
    }
    if (CONTAINERS.has(element)) {
      const positions = open.get(element) ?? [];
      positions.push(lt);
      open.set(element, positions);
    }
    if (TEXT_ELEMENTS.has(element)) {
      const close = lower.indexOf(`</${element}`, end);
      if (close === -1) {
        problems.push(unclosed(lt, `<${element}>`));
        break;
      }
      if (element === 'style') {
        refusePlaceholders(end, close, 'in a <style> block');
        const found = scriptInCss(source.slice(end, close));
        if (found) problems.push(problem(end, found));
      }
      index = close;
      continue;
    }
    index = end;
  }
  // The footer goes before the last `</body`: it must be a real end tag, with every container closed.
  for (let at = lower.indexOf('</body'); at !== -1; at = lower.indexOf('</body', at + 1)) {
    if (!bodyEnds.has(at))
      problems.push({
        position: at,
        message: `</body at position ${at} is not allowed outside a real end tag (in a comment or an attribute): the footer goes before the end of the body`,
      });
  }
  const footerAt = Math.max(-1, ...bodyEnds);
  for (const [name, positions] of open)
    for (const at of positions)
      if (footerAt === -1 || at < footerAt) problems.push(unclosed(at, `<${name}>`));
  return problems.sort((a, b) => a.position - b.position);
}

/** The refusals of one start tag's attributes: event handlers, script URLs, script in CSS, a navigating `<meta>`. */
function startTagProblems(element: string, at: number, attributes: readonly Attribute[]): TemplateProblem[] {
  const problems: TemplateProblem[] = [];
  for (const attribute of attributes) {
    if (attribute.name.startsWith('on')) {
      problems.push(problem(attribute.at, `the event-handler attribute ${attribute.name}`));
      continue;
    }
    if (attribute.value === undefined) continue;
    if (element === 'meta' && attribute.name === 'http-equiv') {
      const equiv = squeezed(decodeReferences(attribute.value));
      if (!META_HTTP_EQUIV.has(equiv))
        problems.push(problem(at, `<meta http-equiv="${equiv.slice(0, 40)}">`));
      continue;
    }
    if (attribute.name === 'style') {
      const css = scriptInCss(attribute.value);
      if (css) problems.push(problem(attribute.valueAt, css));
      continue;
    }
    if (!URL_ATTRIBUTES.has(attribute.name) && attribute.name !== 'srcset') continue;
    const url = scriptUrl(decodeReferences(attribute.value));
    if (url) problems.push(problem(attribute.valueAt, url));
  }
  return problems;
}
