import { CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import { type IPublicHostedZone, PublicHostedZone, TxtRecord } from 'aws-cdk-lib/aws-route53';
import {
  DkimIdentity,
  EasyDkimSigningKeyLength,
  EmailIdentity,
  Identity,
  MailFromBehaviorOnMxFailure,
} from 'aws-cdk-lib/aws-ses';
import { Construct } from 'constructs';

export interface SenderIdentityProps {
  /** The domain emails are sent from. */
  domain: string;
  /** The MAIL FROM subdomain's first label (`mail` makes `mail.<domain>`). */
  mailFromSubdomain: string;
  /** Where DMARC aggregate reports go, if anywhere. */
  dmarcReportAddress?: string | undefined;
  /** A Route 53 public zone of the domain: the records are published there. */
  hostedZoneId?: string | undefined;
  /** Whether the DMARC record is published in that zone too (not when the domain has one). */
  publishDmarc?: boolean | undefined;
}

/** One DNS record the domain's owner publishes, as the stack outputs it. */
interface DnsRecord {
  id: string;
  type: 'CNAME' | 'MX' | 'TXT';
  name: string;
  value: string;
  why: string;
}

/**
 * The SES identity of the sending domain, set up the way mailbox providers' bulk-sender rules ask:
 * Easy DKIM with 2048-bit keys (DKIM aligned with the From domain), a custom MAIL FROM subdomain
 * whose SPF record names SES (SPF aligned too), and a DMARC record to start from (`p=none`: report,
 * do not reject, until the reports show every sender of the domain aligned). Every record is a stack
 * output; with a hosted zone the stack publishes them itself.
 */
export class SenderIdentity extends Construct {
  readonly identity: EmailIdentity;
  /** The identity's name (the domain), as GetEmailIdentity takes it. */
  readonly identityName: string;

  constructor(scope: Construct, id: string, props: SenderIdentityProps) {
    super(scope, id);
    const { domain } = props;
    const mailFrom = `${props.mailFromSubdomain}.${domain}`;
    const zone: IPublicHostedZone | undefined = props.hostedZoneId
      ? PublicHostedZone.fromPublicHostedZoneAttributes(this, 'Zone', {
          hostedZoneId: props.hostedZoneId,
          zoneName: domain,
        })
      : undefined;
    this.identity = new EmailIdentity(this, 'Identity', {
      // With a zone, CDK writes the three DKIM CNAMEs and the MAIL FROM MX and SPF records into it.
      identity: zone ? Identity.publicHostedZone(zone) : Identity.domain(domain),
      dkimIdentity: DkimIdentity.easyDkim(EasyDkimSigningKeyLength.RSA_2048_BIT),
      mailFromDomain: mailFrom,
      // Without the MX record, SES sends with its own MAIL FROM rather than refusing: mail still goes,
      // SPF is then not aligned, and /health says so.
      mailFromBehaviorOnMxFailure: MailFromBehaviorOnMxFailure.USE_DEFAULT_VALUE,
    });
    this.identityName = domain;

    const region = Stack.of(this).region;
    const dmarc = [
      'v=DMARC1',
      'p=none',
      ...(props.dmarcReportAddress ? [`rua=mailto:${props.dmarcReportAddress}`] : []),
    ].join('; ');
    const records: DnsRecord[] = [
      ...[1, 2, 3].map((n) => ({
        id: `DkimRecord${n}`,
        type: 'CNAME' as const,
        name: this.dkimToken('Name', n),
        value: this.dkimToken('Value', n),
        why: `DKIM key ${n} of 3 (Easy DKIM, RSA 2048)`,
      })),
      {
        id: 'MailFromMxRecord',
        type: 'MX',
        name: mailFrom,
        value: `10 feedback-smtp.${region}.amazonses.com`,
        why: 'MAIL FROM: where bounces return',
      },
      {
        id: 'MailFromSpfRecord',
        type: 'TXT',
        name: mailFrom,
        value: '"v=spf1 include:amazonses.com ~all"',
        why: 'SPF of the MAIL FROM domain',
      },
      {
        id: 'DmarcRecord',
        type: 'TXT',
        name: `_dmarc.${domain}`,
        value: `"${dmarc}"`,
        why: 'DMARC, suggested: start with p=none and read the reports before enforcing',
      },
    ];
    for (const record of records) {
      // On the stack, so their names read plainly in `cdk deploy`'s outputs (SenderDkimRecord1, …).
      new CfnOutput(Stack.of(this), `Sender${record.id}`, {
        description: `${record.why}${zone ? ' (published in the hosted zone)' : ': publish it in DNS'}`,
        value: `${record.name} ${record.type} ${record.value}`,
      });
    }
    // With a zone, the identity writes its DKIM CNAMEs and the MAIL FROM MX and SPF records itself;
    // the DMARC record is the stack's, unless the domain has its own.
    if (zone && props.publishDmarc !== false) {
      new TxtRecord(this, 'Dmarc', {
        zone,
        recordName: `_dmarc.${domain}`,
        values: [dmarc],
        ttl: Duration.hours(1),
      });
    }
  }

  private dkimToken(part: 'Name' | 'Value', n: number): string {
    return this.identity[`dkimDnsToken${part}${n}` as `dkimDnsToken${'Name' | 'Value'}${1 | 2 | 3}`];
  }
}
