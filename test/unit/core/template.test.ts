import { describe, expect, it } from 'vitest';
import {
  compileTemplate,
  parseTemplate,
  renderTemplate,
  singleLine,
  worstCaseBytes,
} from '../../../lambdas/core/templates/template';

const values = { name: 'Helping Hands', address: '1 Main St', email: 'info@helping.org' };

function render(source: string): string {
  const parsed = parseTemplate(source);
  if (!parsed.ok) throw new Error(parsed.problems.map((problem) => problem.message).join('; '));
  return renderTemplate(parsed.parts, values);
}

describe('templates', () => {
  it('substitutes the documented placeholders', () => {
    expect(render('Dear {name}, of {address} ({email}).')).toBe(
      'Dear Helping Hands, of 1 Main St (info@helping.org).',
    );
  });

  it("keeps the original API's doubled braces as literal braces", () => {
    expect(render('{{name}} is {name}; a set: {{1, 2}}')).toBe('{name} is Helping Hands; a set: {1, 2}');
    expect(render('}}{{')).toBe('}{');
  });

  it('renders text without placeholders, and the empty template, as they are', () => {
    expect(render('No fields here.')).toBe('No fields here.');
    expect(render('')).toBe('');
  });

  it('inserts values as text, never parsing them again', () => {
    const parsed = parseTemplate('Hi {name}');
    if (!parsed.ok) throw new Error('should parse');
    expect(renderTemplate(parsed.parts, { ...values, name: '{address} {{x}} ${process.env}' })).toBe(
      'Hi {address} {{x}} ${process.env}',
    );
  });

  // Everything Python's str.format would have interpreted, and then some.
  it.each([
    ['{name.__class__}', 0, 'attribute or index access'],
    ['Hi {name.__class__.__mro__}', 3, 'attribute or index access'],
    ['{name[0]}', 0, 'attribute or index access'],
    ['{address[__globals__]}', 0, 'attribute or index access'],
    ['{name!r}', 0, 'conversion'],
    ['{name!s:>10}', 0, 'conversion'],
    ['{name:>10}', 0, 'format specification'],
    ['{email:{width}}', 0, 'nested {'],
    ['{0}', 0, 'positional placeholder {0}'],
    ['{}', 0, 'empty placeholder'],
    ['{ name }', 0, 'unknown placeholder { name }'],
    ['{Name}', 0, 'unknown placeholder {Name}'],
    ['{password}', 0, 'unknown placeholder {password}'],
    ['{__import__}', 0, 'unknown placeholder'],
    ['Hello {name', 6, 'unclosed {'],
    ['Hello name}', 10, 'single }'],
    ['{{name}', 6, 'single }'],
    ['{name}}', 6, 'single }'],
  ])('rejects %j at position %i (%s)', (source, position, message) => {
    const parsed = parseTemplate(source);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.problems[0]).toEqual({ position, message: expect.stringContaining(message) });
    expect(parsed.problems[0]?.message).toContain(`position ${position}`);
  });

  it('reports every problem of a template, not only the first', () => {
    const parsed = parseTemplate('{name.x} and {0} and {nope}');
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.problems.map((problem) => problem.position)).toEqual([0, 13, 21]);
  });
});

describe('worst-case rendered size', () => {
  const maxLength = { name: 200, address: 500, email: 254 };

  it('counts literal text in UTF-8 bytes, doubled braces as the one brace they render', () => {
    // 'é' is 2 bytes, '€' 3, '😀' 4; '{{' renders '{'.
    expect(worstCaseBytes(compileTemplate('é€😀 {{x}}'), maxLength)).toBe(2 + 3 + 4 + ' {x}'.length);
  });

  it('counts each placeholder occurrence at 3 bytes per unit of its field at its longest', () => {
    expect(worstCaseBytes(compileTemplate('{name}{name}, {address} <{email}>'), maxLength)).toBe(
      (2 * 200 + 500 + 254) * 3 + ', '.length + ' <>'.length,
    );
  });

  it('is never below what a rendering with the longest values weighs', () => {
    const parts = compileTemplate('Dear {name} of {address} ({email})');
    const widest = { name: '€'.repeat(200), address: '😀'.repeat(250), email: 'a'.repeat(254) };
    expect(Buffer.byteLength(renderTemplate(parts, widest))).toBeLessThanOrEqual(
      worstCaseBytes(parts, maxLength),
    );
  });
});

describe('singleLine', () => {
  it('replaces each line break and other control character with a space', () => {
    expect(singleLine('Acme\r\nBcc: a@evil.example')).toBe('Acme  Bcc: a@evil.example');
    expect(singleLine('a\tb\u0000c\u007fd\u0085e\u2028f\u2029g')).toBe('a b c d e f g');
  });

  it('keeps every other character, and the length, as it was', () => {
    const text = 'Ünïcode — “quotes”, non\u00a0breaking, 😀, {name}';
    expect(singleLine(text)).toBe(text);
  });
});
