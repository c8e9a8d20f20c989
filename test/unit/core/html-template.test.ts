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
    ['<svg/onload=alert(1)></svg>', [0, 5]],
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
    ['<img src=" {name}">', [11]],
    // A value where markup reads it as more than text.
    ['<a href=https://x.org/{name}>x</a>', [22]],
    ['<a href="java{name}">x</a>', [13]],
    ['<a href="&#32;{name}">x</a>', [14]],
    ['<img src="x.png" srcset="{address} 2x">', [25]],
    ['<p style="color: {name}">x</p>', [17]],
    ['<style>p {{ color: {name} }}</style>', [19]],
    ['<p>x</{name}>', [6]],
    ['<{name}>x', [1]],
    ['<p {name}>x</p>', [3]],
    ['<!-- {name} --><p>x</p>', [5]],
    // Comments and foreign content as a browser reads them.
    ['<!--><a href="javascript:alert(1)">x</a>', [14]],
    ['<!-- a --!><a href="javascript:alert(1)">x</a> -->', [20]],
    ['<math><style><img src=x onerror=alert(1)></style></math>', [0]],
    ['<a href="&#0000106;avascript:alert(1)">x</a>', [9]],
    ['<a href="&#x000000006a;avascript:alert(1)">x</a>', [9]],
    ['<meta http-equiv="Refresh" content="0;url=https://evil.example">', [0]],
    ['<div style="-ms-behavior: url(x.htc)">x</div>', [12]],
    // What would hide the footer.
    ['<p>Hi</p><!-- never closed', [9]],
    ['<p>Hi <a href="https://x.org', [6]],
    ['<p>Hi</p><textarea>', [9]],
    ['<div style="display:none"><p>Hi</p></body>', [0]],
    ['<p>Hi</p><!-- </body> --></body>', [14]],
    ['<style>p {{}}', [0]],
    ['<p>Hi</p><!--[if mso]><p>Outlook only</p>', [9]],
    ['<p>Hi</p><!--[if mso]></body><![endif]--></body>', [22]],
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
    '<meta charset="utf-8"><meta name="viewport" content="width=device-width">',
    '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">',
    '<p style="scroll-behavior: smooth">x</p>',
    '<title>News for {name}</title><a href="/donate?who={email}" title="For {name}">Give</a>',
    '<!--[if !mso]><!--><p>Hi</p><!--<![endif]-->',
    '<div><span>{name}</span></div><table><tr><td>x</td></tr></table>',
  ])('accepts a newsletter template: %j', (source) => {
    expect(htmlTemplateProblems(source)).toEqual([]);
  });

  it('accepts a newsletter as an email builder exports it', () => {
    expect(htmlTemplateProblems(EXPORTED_NEWSLETTER)).toEqual([]);
  });

  // Inputs that would take quadratic time in a scanner that looks ahead from every tag: each ends
  // in one refusal at its start (a test timing out is the failure this guards against).
  it.each([
    ['an unclosed quote over many tags', `<a href="${'<a x='.repeat(20_000)}`],
    ['one unclosed tag', '<p '.repeat(33_000)],
    ['many comments and no --!>', `<div>${'<!-- x -->'.repeat(10_000)}`],
    ['many open containers and other end tags', `<div>${'<span>'.repeat(10_000)}${'</p>'.repeat(10_000)}`],
  ])('reads 100 KB of %s in one pass', (_, source) => {
    expect(positions(source)[0]).toBe(0);
  });
  it('pairs many placeholders with many attributes in one pass', () => {
    const source = `<p ${'title="{name}" '.repeat(6_000)}>x</p>`;
    expect(htmlTemplateProblems(source)).toEqual([]);
  });
});

/** The shape of what Mailchimp-style builders export: doctype, MSO conditional comments, tables, a preheader. */
const EXPORTED_NEWSLETTER = `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
<meta http-equiv="X-UA-Compatible" content="IE=edge">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Spring update</title>
<!--[if gte mso 9]><xml><o:OfficeDocumentSettings><o:PixelsPerInch>96</o:PixelsPerInch></o:OfficeDocumentSettings></xml><![endif]-->
<style type="text/css">
  body {{ margin: 0; padding: 0; }}
  @media only screen and (max-width: 600px) {{ .column {{ width: 100% !important; }} }}
</style>
</head>
<body style="margin:0;padding:0;background-color:#f4f4f4;">
<div style="display:none;max-height:0;overflow:hidden;">Our spring news, {name}</div>
<center>
<!--[if mso]><table role="presentation" width="600" align="center"><tr><td><![endif]-->
<table role="presentation" class="column" width="100%" cellpadding="0" cellspacing="0" border="0">
  <tr><td style="padding:24px;font-family:Arial,sans-serif;">
    <h1 style="font-size:24px;">Dear {name},</h1>
    <p>We have you at {address}. Thank you for a year of work together.</p>
    <p><a href="https://example.org/report?for={email}" style="color:#1a73e8;" target="_blank">Read the report</a></p>
    <img src="https://example.org/spring.png" width="552" alt="Volunteers planting trees" style="display:block;border:0;">
  </td></tr>
</table>
<!--[if mso]></td></tr></table><![endif]-->
</center>
</body>
</html>`;
