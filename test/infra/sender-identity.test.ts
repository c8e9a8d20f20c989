import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../lib/app';
import { resourcesOfType } from '../../local/template';
import { synthesizeForTests } from '../support/synth';
import { sesArn } from './template-queries';

const SENDER = {
  fromAddress: 'news@example.org',
  senderDomain: 'example.org',
  senderPostalAddress: '1 Main St, Springfield',
};

/** The stack's outputs' values, by logical id, as CloudFormation would join them (tokens shown as `{…}`). */
function outputs(template: { Outputs?: Record<string, { Value: unknown }> }): Record<string, string> {
  const text = (value: unknown): string => {
    if (typeof value === 'string') return value;
    const join = (value as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
    if (join) return join[1].map(text).join(join[0]);
    const attribute = (value as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
    if (attribute) return `{${attribute[1]}}`;
    const ref = (value as { Ref?: string }).Ref;
    return `{${ref}}`;
  };
  return Object.fromEntries(
    Object.entries(template.Outputs ?? {}).map(([id, { Value }]) => [id, text(Value)]),
  );
}

describe('the sender identity (senderDomain)', () => {
  it('creates the domain identity with Easy DKIM (RSA 2048) and a MAIL FROM subdomain, and outputs every record to publish', () => {
    const { assertions, template } = synthesizeForTests(SENDER);

    assertions.resourceCountIs('AWS::SES::EmailIdentity', 1);
    assertions.hasResourceProperties('AWS::SES::EmailIdentity', {
      EmailIdentity: 'example.org',
      DkimSigningAttributes: { NextSigningKeyLength: 'RSA_2048_BIT' },
      MailFromAttributes: { MailFromDomain: 'mail.example.org', BehaviorOnMxFailure: 'USE_DEFAULT_VALUE' },
    });
    // Nothing is published without a zone: the user publishes the outputs.
    expect(resourcesOfType(template, 'AWS::Route53::RecordSet')).toEqual([]);
    const records = outputs(template);
    expect(records).toMatchObject({
      SenderDkimRecord1: '{DkimDNSTokenName1} CNAME {DkimDNSTokenValue1}',
      SenderDkimRecord2: '{DkimDNSTokenName2} CNAME {DkimDNSTokenValue2}',
      SenderDkimRecord3: '{DkimDNSTokenName3} CNAME {DkimDNSTokenValue3}',
      SenderMailFromMxRecord: 'mail.example.org MX 10 feedback-smtp.{AWS::Region}.amazonses.com',
      SenderMailFromSpfRecord: 'mail.example.org TXT "v=spf1 include:amazonses.com ~all"',
      SenderDmarcRecord: '_dmarc.example.org TXT "v=DMARC1; p=none"',
    });
  });

  it('asks for DMARC reports and takes another MAIL FROM subdomain when told to', () => {
    const { assertions, template } = synthesizeForTests({
      ...SENDER,
      mailFromSubdomain: 'bounces',
      dmarcReportAddress: 'dmarc@example.org',
    });
    assertions.hasResourceProperties('AWS::SES::EmailIdentity', {
      MailFromAttributes: Match.objectLike({ MailFromDomain: 'bounces.example.org' }),
    });
    expect(outputs(template).SenderDmarcRecord).toBe(
      '_dmarc.example.org TXT "v=DMARC1; p=none; rua=mailto:dmarc@example.org"',
    );
  });

  it('publishes the DKIM, MAIL FROM and DMARC records in the hosted zone it is given, once each', () => {
    const { template } = synthesizeForTests({ ...SENDER, hostedZoneId: 'Z123EXAMPLE' });
    const records = resourcesOfType(template, 'AWS::Route53::RecordSet').map(([, { Properties }]) => ({
      zone: Properties?.HostedZoneId,
      type: Properties?.Type,
      name: typeof Properties?.Name === 'string' ? Properties.Name : 'dkim',
    }));
    expect(records.every((record) => record.zone === 'Z123EXAMPLE')).toBe(true);
    expect(records.map(({ type, name }) => `${type} ${name}`).sort()).toEqual([
      'CNAME dkim',
      'CNAME dkim',
      'CNAME dkim',
      'MX mail.example.org.',
      'TXT _dmarc.example.org.',
      'TXT mail.example.org.',
    ]);
  });

  it('leaves the DMARC record out of the zone when the domain has its own (publishDmarc=false)', () => {
    const { template } = synthesizeForTests({
      ...SENDER,
      hostedZoneId: 'Z123EXAMPLE',
      publishDmarc: 'false',
    });
    const types = resourcesOfType(template, 'AWS::Route53::RecordSet').map(
      ([, { Properties }]) => `${Properties?.Type} ${Properties?.Name}`,
    );
    expect(types).not.toContain('TXT _dmarc.example.org.');
    expect(types).toHaveLength(5);
  });

  it('lets GET /health read the identity, and only it', () => {
    const { assertions } = synthesizeForTests(SENDER);
    assertions.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Action: 'ses:GetEmailIdentity',
            Effect: 'Allow',
            Resource: sesArn('identity/example.org'),
          },
        ]),
      },
    });
    assertions.hasResourceProperties('AWS::Lambda::Function', {
      Description: 'GET /health and GET /health/details',
      Environment: { Variables: Match.objectLike({ SENDER_IDENTITY: 'example.org' }) },
    });
  });

  it('creates no identity without senderDomain', () => {
    const { assertions } = synthesizeForTests({ fromAddress: 'news@example.org' });
    assertions.resourceCountIs('AWS::SES::EmailIdentity', 0);
  });

  const synth = (context: Record<string, unknown>) => () =>
    createApp({ context: { ...context, 'aws:cdk:bundling-stacks': [] } }).app.synth();

  it.each([
    [
      { ...SENDER, fromAddress: 'news@other.example' },
      /fromAddress: Must be an address of senderDomain \(example\.org\)/,
    ],
    [{ ...SENDER, senderDomain: 'not a domain' }, /senderDomain: Must be a domain name/],
    [{ ...SENDER, senderDomain: undefined, hostedZoneId: 'Z123' }, /hostedZoneId: Needs senderDomain/],
    [{ ...SENDER, hostedZoneId: 'zone-1' }, /hostedZoneId: Must be a Route 53 hosted zone id/],
    [{ ...SENDER, mailFromSubdomain: 'a.b' }, /mailFromSubdomain: Must be one DNS label/],
    [{ ...SENDER, senderPostalAddress: undefined }, /senderPostalAddress: Required with the ses transport/],
    [
      { ...SENDER, senderPostalAddress: '1 Main St\r\nBcc: x@evil.example' },
      /senderPostalAddress: Must be one line without control characters/,
    ],
    [{ ...SENDER, senderName: 'Acme\u0000' }, /senderName: Must be one line without control characters/],
    [{ ...SENDER, dmarcReportAddress: 'reports' }, /dmarcReportAddress: Must be an email address/],
  ])('refuses to synthesize %o, naming the key', (context, message) => {
    expect(synth(context)).toThrow(message);
  });

  it('synthesizes with the record transport and no postal address', () => {
    expect(synth({ transport: 'record', storeRenderedEmails: false })).not.toThrow();
  });
});
