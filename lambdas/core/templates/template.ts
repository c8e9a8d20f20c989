/**
 * Email templates are data, never code. The syntax is the subset of Python's `str.format` the
 * original API's clients used: `{name}`, `{address}` and `{email}` are replaced by the nonprofit's
 * values, `{{` and `}}` stand for literal braces. Everything else `str.format` would have
 * interpreted (attribute or index access, conversions, format specs, positional fields) is rejected
 * when the job is submitted, with its position, so the consumer never meets a template it cannot render.
 */

export const PLACEHOLDERS = ['name', 'address', 'email'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];
export type TemplateValues = Record<Placeholder, string>;

export type TemplatePart = { text: string } | { placeholder: Placeholder };

export interface TemplateProblem {
  /** Zero-based index of the offending character in the template. */
  position: number;
  message: string;
}

export type ParseResult = { ok: true; parts: TemplatePart[] } | { ok: false; problems: TemplateProblem[] };

const ALLOWED = `only ${PLACEHOLDERS.map((name) => `{${name}}`).join(', ')} are allowed; write {{ and }} for literal braces`;

const isPlaceholder = (field: string): field is Placeholder =>
  (PLACEHOLDERS as readonly string[]).includes(field);

/** Placeholders are quoted in errors, but never at length: a 100 KB "name" would make a 100 KB answer. */
const MAX_QUOTED_FIELD = 40;

function describeField(rawField: string): string {
  const field = rawField.length > MAX_QUOTED_FIELD ? `${rawField.slice(0, MAX_QUOTED_FIELD)}…` : rawField;
  if (field === '') return 'empty placeholder {} (positional fields are not supported)';
  if (/^\d+$/.test(field)) return `positional placeholder {${field}} is not supported`;
  if (/[.[]/.test(field)) return `attribute or index access in {${field}} is not allowed`;
  if (field.includes('!')) return `conversion in {${field}} is not allowed`;
  if (field.includes(':')) return `format specification in {${field}} is not allowed`;
  return `unknown placeholder {${field}}`;
}

export function parseTemplate(source: string): ParseResult {
  const parts: TemplatePart[] = [];
  const problems: TemplateProblem[] = [];
  let text = '';
  let index = 0;
  while (index < source.length) {
    const char = source[index];
    const next = source[index + 1];
    if (char === '{' && next === '{') {
      text += '{';
      index += 2;
    } else if (char === '}' && next === '}') {
      text += '}';
      index += 2;
    } else if (char === '}') {
      problems.push({ position: index, message: `single } at position ${index}: ${ALLOWED}` });
      index += 1;
    } else if (char === '{') {
      const close = source.indexOf('}', index + 1);
      const nested = source.indexOf('{', index + 1);
      if (close === -1) {
        problems.push({ position: index, message: `unclosed { at position ${index}: ${ALLOWED}` });
        break;
      }
      if (nested !== -1 && nested < close) {
        problems.push({ position: index, message: `nested { at position ${index}: ${ALLOWED}` });
        index = close + 1;
        continue;
      }
      const field = source.slice(index + 1, close);
      if (isPlaceholder(field)) {
        if (text) parts.push({ text });
        text = '';
        parts.push({ placeholder: field });
      } else {
        problems.push({
          position: index,
          message: `${describeField(field)} at position ${index}: ${ALLOWED}`,
        });
      }
      index = close + 1;
    } else {
      text += char;
      index += 1;
    }
  }
  if (text) parts.push({ text });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, parts };
}

/**
 * Where each valid placeholder's `{` is in a template's source (`{{` and `}}` are literal braces,
 * not placeholders): for checks that care where a value lands, as the HTML scanner does.
 */
export function placeholderPositions(source: string): number[] {
  const positions: number[] = [];
  let index = 0;
  while (index < source.length) {
    const char = source[index];
    if ((char === '{' || char === '}') && source[index + 1] === char) {
      index += 2;
      continue;
    }
    if (char === '{') {
      const close = source.indexOf('}', index + 1);
      if (close === -1) break;
      if (isPlaceholder(source.slice(index + 1, close))) positions.push(index);
      index = close + 1;
      continue;
    }
    index += 1;
  }
  return positions;
}

/** Inserts the values as they are: a value containing braces is text, never parsed again. */
export function renderTemplate(parts: readonly TemplatePart[], values: TemplateValues): string {
  return parts.map((part) => ('text' in part ? part.text : values[part.placeholder])).join('');
}

/**
 * The most UTF-8 bytes a template can render to, given the longest value of each placeholder's
 * field (in UTF-16 code units, as string lengths count): a code unit takes at most 3 UTF-8 bytes
 * (a surrogate pair, 2 units, takes 4), so each placeholder adds at most 3 bytes per unit, or
 * `bytesPerUnit` where values are escaped (HTML: 6).
 */
export function worstCaseBytes(
  parts: readonly TemplatePart[],
  maxLength: Readonly<Record<Placeholder, number>>,
  bytesPerUnit = 3,
): number {
  return parts.reduce(
    (total, part) =>
      total +
      ('text' in part ? Buffer.byteLength(part.text, 'utf8') : maxLength[part.placeholder] * bytesPerUnit),
    0,
  );
}

/**
 * Makes a value safe for a one-line context (a subject is a header): each control character,
 * Unicode line or paragraph separator becomes a space. For values stored before names and
 * addresses were checked for them; the same set as `controlCharacter` in nonprofits/nonprofit.ts.
 */
export function singleLine(value: string): string {
  return value.replace(/[\p{Cc}\u2028\u2029]/gu, ' ');
}

/** Parses a template that was validated at submission; a failure here means stored data was changed. */
export function compileTemplate(source: string): TemplatePart[] {
  const parsed = parseTemplate(source);
  if (!parsed.ok) throw new Error(`Stored template no longer parses: ${parsed.problems[0]?.message}`);
  return parsed.parts;
}
