import { describe, expect, it } from 'vitest';
import {
  escapeHtml,
  htmlTemplateProblems,
  renderHtmlTemplate,
  worstCaseHtmlBytes,
} from '../../../lambdas/core/templates/html';
import { compileTemplate } from '../../../lambdas/core/templates/template';

const positions = (source: string) => htmlTemplateProblems(source).map((problem) => problem.position);

describe('escapeHtml', () => {
  it('escapes the five characters that could end text or an attribute', () => {
    expect(escapeHtml(`Tom & Jerry <b>"x"'y'`)).toBe('Tom &amp; Jerry &lt;b&gt;&quot;x&quot;&#39;y&#39;');
    expect(escapeHtml('Grüße 👋')).toBe('Grüße 👋');
  });
});

describe('renderHtmlTemplate', () => {
  it("escapes every value and leaves the template's own markup as written", () => {
    const parts = compileTemplate('<p title="{address}">Dear <b>{name}</b>, {{hi}}</p>');
    expect(
      renderHtmlTemplate(parts, { name: 'Tom & Jerry <b>', address: '1 "Main" St', email: 'a@b.org' }),
    ).toBe('<p title="1 &quot;Main&quot; St">Dear <b>Tom &amp; Jerry &lt;b&gt;</b>, {hi}</p>');
  });
});

describe('worstCaseHtmlBytes', () => {
  it('counts six bytes for each character of a value and the text as it is', () => {
    const parts = compileTemplate('<p>{name}</p>é');
    expect(worstCaseHtmlBytes(parts, { name: 200, address: 500, email: 254 })).toBe(7 + 2 + 200 * 6);
  });
});

describe('htmlTemplateProblems', () => {
  it.each([
    ['<p>Hi</p><script>alert(1)</script>', [9]],
    ['<SCRIPT src="x.js"></SCRIPT>', [0]],
    ['<!-- <script>alert(1)</script> -->', [5]],
    ['<img src=x onerror=alert(1)>', [11]],
    ['<body ONLOAD="go()">', [6]],
    ['<svg/onload=alert(1)>', [5]],
    ['<a href="javascript:alert(1)">x</a>', [9]],
    ['<a href=" JaVaScRiPt:alert(1)">x</a>', [9]],
    ['<a href="jav&#x61;script:alert(1)">x</a>', [9]],
    ['<a href="jav&#97;script&colon;alert(1)">x</a>', [9]],
    ['<a href="java\tscript:alert(1)">x</a>', [9]],
    ['<a href=javascript:alert(1)>x</a>', [8]],
    ['<a title="a > b" href="vbscript:msgbox">x</a>', [23]],
    ['<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', [9]],
    ['<iframe src="https://example.org"></iframe>', [0]],
    ['<form action="https://evil.example"><input></form>', [0]],
    ['<meta http-equiv="refresh" content="0;url=https://evil.example">', [0]],
    ['<div style="width: expression(alert(1))">x</div>', [12]],
    ['<style>p {{ background: url(javascript:alert(1)) }}</style>', [7]],
    ['<a href="{address}">x</a>', [9]],
    ['<img src=" {name}">', [10]],
  ])('refuses %j at the offending position', (source, expected) => {
    expect(positions(source)).toEqual(expected);
    for (const problem of htmlTemplateProblems(source))
      expect(problem.message).toContain(`position ${problem.position}`);
  });

  it.each([
    '<html><head><style>p {{ color: #333; margin: 0 }}</style></head><body><p>Dear {name}</p></body></html>',
    '<table role="presentation"><tr><td align="center">{address}</td></tr></table>',
    '<a href="https://example.org/donate?ref={email}">Donate</a>',
    '<a href="mailto:{email}">Write to us</a>',
    '<img src="https://example.org/logo.png" alt="Data: our year in numbers">',
    '<img src="data:image/png;base64,iVBORw0KGgo=" alt="">',
    '<!--[if mso]><table><tr><td><![endif]--><p>Hi</p><!--[if mso]></td></tr></table><![endif]-->',
    '<p title="one > two">Online, on time</p>',
    '<p>Use 2 < 3 and a > b in text</p>',
  ])('accepts a newsletter template: %j', (source) => {
    expect(htmlTemplateProblems(source)).toEqual([]);
  });

  it('reads a 100 KB template of unclosed tags and quotes in one pass', () => {
    const hostile = `<a href="${'<a x='.repeat(20_000)}`;
    expect(Array.isArray(htmlTemplateProblems(hostile))).toBe(true);
    expect(htmlTemplateProblems('<p '.repeat(33_000))).toEqual([]);
  });
});
