import { readFileSync } from 'node:fs';
import {
  GetAccountCommand,
  GetConfigurationSetCommand,
  GetEmailIdentityCommand,
  NotFoundException,
  PutConfigurationSetSendingOptionsCommand,
  SendEmailCommand,
  SendingPausedException,
} from '@aws-sdk/client-sesv2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeMime } from '../../lambdas/core/transport/mime';
import {
  clearInbox,
  type LocalSes,
  readInbox,
  type SentEmail,
  sesClient,
  startLocalSes,
} from '../../local/ses';

/** The addresses listening on a TCP port, from the kernel's socket tables (Linux). */
function listeningAddresses(port: number): string[] {
  const addresses: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const row of readFileSync(table, 'utf8').trim().split('\n').slice(1)) {
      const [, local = '', , state] = row.trim().split(/\s+/);
      const [hexAddress = '', hexPort = ''] = local.split(':');
      // 0A is LISTEN; an IPv4 address is written as a little-endian hex number.
      if (state !== '0A' || Number.parseInt(hexPort, 16) !== port) continue;
      addresses.push(
        hexAddress.length === 8
          ? (hexAddress.match(/../g) ?? [])
              .reverse()
              .map((byte) => Number.parseInt(byte, 16))
              .join('.')
          : `ipv6:${hexAddress}`,
      );
    }
  }
  return addresses;
}

describe('the local SES', () => {
  const sentEmails: SentEmail[] = [];
  let ses: LocalSes;
  let port: number;
  let client: ReturnType<typeof sesClient>;

  beforeAll(async () => {
    // The account GetAccount reports is the one startLocalSes writes, not one from the shell.
    delete process.env.AWS_SES_ACCOUNT;
    ses = await startLocalSes({
      maxSendRate: 3,
      configurationSets: ['NonprofitMailerSet'],
      identities: [{ name: 'mailer.example.org', mailFromDomain: 'bounces.mailer.example.org' }],
      onSent: (email) => sentEmails.push(email),
    });
    port = Number(new URL(ses.endpoint).port);
    client = sesClient(ses.endpoint);
  });
  afterAll(async () => {
    client.destroy();
    await ses.stop();
  });

  it('answers a malformed or incomplete SendEmail with a 400 and takes nothing, as SES does (never a crash)', async () => {
    const before = sentEmails.length;
    const send = (body: unknown) =>
      fetch(`${ses.endpoint}/v2/email/outbound-emails`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization:
            'AWS4-HMAC-SHA256 Credential=local/20261205/us-east-1/ses/aws4_request, SignedHeaders=host, Signature=0',
        },
        body: JSON.stringify(body),
      });
    const simple = { Subject: { Data: 'Hi' }, Body: { Text: { Data: 'Hello' } } };
    const to = { ToAddresses: ['member@to.example.org'] };
    for (const call of [
      {
        FromEmailAddress: 'mailer@nonprofit-mailer.localhost',
        Destination: to,
        EmailTags: {},
        Content: { Simple: simple },
      },
      {
        FromEmailAddress: 'mailer@nonprofit-mailer.localhost',
        Destination: to,
        Content: { Simple: { ...simple, Headers: [null] } },
      },
      { Destination: to, Content: { Simple: simple } },
      {
        FromEmailAddress: 'mailer@nonprofit-mailer.localhost',
        Destination: to,
        Content: { Raw: { Data: '' } },
      },
    ]) {
      const answer = await send(call);
      expect(answer.status, JSON.stringify(call)).toBeGreaterThanOrEqual(400);
      expect(answer.status, JSON.stringify(call)).toBeLessThan(500);
    }
    expect(sentEmails.length).toBe(before);
  });

  it('keeps an email sent with SendEmail, addresses, content and custom headers as sent', async () => {
    const { MessageId } = await client.send(
      new SendEmailCommand({
        FromEmailAddress: 'mailer@nonprofit-mailer.localhost',
        Destination: { ToAddresses: ['member@to.example.org'], CcAddresses: ['board@cc.example.org'] },
        ReplyToAddresses: ['office@reply.example.org'],
        Content: {
          Simple: {
            Subject: { Data: 'Spring newsletter' },
            Body: { Text: { Data: 'Hello, member' }, Html: { Data: '<p>Hello, member</p>' } },
            Headers: [{ Name: 'List-Unsubscribe', Value: '<https://unsubscribe.example.org/abc>' }],
          },
        },
      }),
    );

    const sent = (await readInbox(ses.inboxUrl)).find((email) => email.messageId === MessageId);

    expect(sent).toMatchObject({
      from: 'mailer@nonprofit-mailer.localhost',
      destination: { to: ['member@to.example.org'], cc: ['board@cc.example.org'], bcc: [] },
      subject: 'Spring newsletter',
      body: { text: 'Hello, member', html: '<p>Hello, member</p>' },
      headers: [{ name: 'List-Unsubscribe', value: '<https://unsubscribe.example.org/abc>' }],
    });
  });

  it('keeps a raw message as its reader sees it, with the envelope SES delivered it to', async () => {
    const message = await composeMime(
      {
        to: 'member@to.example.org',
        cc: ['board@cc.example.org'],
        reader: 'board@cc.example.org',
        subject: 'Grüße & news',
        text: 'Hello, member',
        html: '<p>Hello, <b>member</b></p>',
        jobId: 'job-1',
        unsubscribe: { url: 'https://unsubscribe.example.org/v1/unsubscribe?token=abc.def' },
      },
      { from: 'mailer@nonprofit-mailer.localhost' },
    );
    const { MessageId } = await client.send(
      new SendEmailCommand({
        FromEmailAddress: 'mailer@nonprofit-mailer.localhost',
        Destination: { ToAddresses: ['board@cc.example.org'] },
        Content: { Raw: { Data: message } },
        ConfigurationSetName: 'NonprofitMailerSet',
      }),
    );

    const sent = (await readInbox(ses.inboxUrl)).find((email) => email.messageId === MessageId);
    expect(sent).toMatchObject({
      from: 'mailer@nonprofit-mailer.localhost',
      // Delivered to the copy's reader alone; its headers show the nonprofit and the cc list.
      destination: { to: ['board@cc.example.org'], cc: [], bcc: [] },
      shown: { to: ['member@to.example.org'], cc: ['board@cc.example.org'] },
      subject: 'Grüße & news',
      body: { text: 'Hello, member', html: '<p>Hello, <b>member</b></p>' },
    });
    expect(sent?.headers).toContainEqual({
      name: 'List-Unsubscribe',
      value: '<https://unsubscribe.example.org/v1/unsubscribe?token=abc.def>',
    });
    // SES's event publishing names the envelope's reader and the subject.
    expect(sentEmails.find((email) => email.messageId === MessageId)).toMatchObject({
      to: ['board@cc.example.org'],
      subject: 'Grüße & news',
      configurationSet: 'NonprofitMailerSet',
    });
    // The raw message, as any mail client opens it, and the page that shows it.
    const raw = await fetch(`${ses.inboxUrl}/messages/${MessageId}.eml`);
    expect(raw.headers.get('content-type')).toBe('message/rfc822');
    expect(await raw.text()).toBe(message.toString('utf8'));
    const page = await (await fetch(ses.inboxUrl)).text();
    expect(page).toContain('Grüße &amp; news');
    expect(page).toContain('<iframe sandbox=""');
  });

  it("reports the template's identities verified with DKIM and MAIL FROM, and any other as SES's 404", async () => {
    expect(
      await client.send(new GetEmailIdentityCommand({ EmailIdentity: 'Mailer.Example.org' })),
    ).toMatchObject({
      IdentityType: 'DOMAIN',
      VerifiedForSendingStatus: true,
      VerificationStatus: 'SUCCESS',
      DkimAttributes: { Status: 'SUCCESS', SigningEnabled: true, CurrentSigningKeyLength: 'RSA_2048_BIT' },
      MailFromAttributes: { MailFromDomain: 'bounces.mailer.example.org', MailFromDomainStatus: 'SUCCESS' },
    });
    await expect(
      client.send(new GetEmailIdentityCommand({ EmailIdentity: 'other.example.org' })),
    ).rejects.toBeInstanceOf(NotFoundException);
  });

  it('empties the inbox on clearInbox', async () => {
    await client.send(
      new SendEmailCommand({
        FromEmailAddress: 'mailer@nonprofit-mailer.localhost',
        Destination: { ToAddresses: ['member@to.example.org'] },
        Content: { Simple: { Subject: { Data: 'Hi' }, Body: { Text: { Data: 'Hi' } } } },
      }),
    );
    expect((await readInbox(ses.inboxUrl)).length).toBeGreaterThan(0);

    await clearInbox(ses.inboxUrl);

    expect(await readInbox(ses.inboxUrl)).toEqual([]);
  });

  it('shows the inbox as a web page', async () => {
    const response = await fetch(ses.inboxUrl);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('answers GetAccount with a production account allowed to send at the rate asked for', async () => {
    const account = await client.send(new GetAccountCommand({}));

    expect(account).toMatchObject({
      SendingEnabled: true,
      ProductionAccessEnabled: true,
      EnforcementStatus: 'HEALTHY',
      SendQuota: { MaxSendRate: 3 },
    });
  });

  it("answers GetConfigurationSet for the sets that exist (the template's), and NotFoundException for others", async () => {
    const set = await client.send(
      new GetConfigurationSetCommand({ ConfigurationSetName: 'NonprofitMailerSet' }),
    );
    expect(set).toMatchObject({
      ConfigurationSetName: 'NonprofitMailerSet',
      SendingOptions: { SendingEnabled: true },
    });
    await expect(
      client.send(new GetConfigurationSetCommand({ ConfigurationSetName: 'unknown' })),
    ).rejects.toBeInstanceOf(NotFoundException);
  });

  it('pauses and resumes a configuration set: while paused, GetConfigurationSet says so and an email sent with it is refused', async () => {
    const send = () =>
      client.send(
        new SendEmailCommand({
          FromEmailAddress: 'mailer@nonprofit-mailer.localhost',
          Destination: { ToAddresses: ['paused@to.example.org'] },
          ConfigurationSetName: 'NonprofitMailerSet',
          Content: { Simple: { Subject: { Data: 'Hi' }, Body: { Text: { Data: 'Hi' } } } },
        }),
      );
    const sending = (enabled: boolean) =>
      client.send(
        new PutConfigurationSetSendingOptionsCommand({
          ConfigurationSetName: 'NonprofitMailerSet',
          SendingEnabled: enabled,
        }),
      );
    await sending(false);
    try {
      expect(
        await client.send(new GetConfigurationSetCommand({ ConfigurationSetName: 'NonprofitMailerSet' })),
      ).toMatchObject({ SendingOptions: { SendingEnabled: false } });
      await expect(send()).rejects.toBeInstanceOf(SendingPausedException);
      expect(
        (await readInbox(ses.inboxUrl)).some((email) =>
          email.destination.to.includes('paused@to.example.org'),
        ),
      ).toBe(false);
    } finally {
      await sending(true);
    }
    expect((await send()).MessageId).toBeTruthy();
    await expect(
      client.send(
        new PutConfigurationSetSendingOptionsCommand({
          ConfigurationSetName: 'unknown',
          SendingEnabled: false,
        }),
      ),
    ).rejects.toBeInstanceOf(NotFoundException);
  });

  it('tells each email it took, as event publishing sees it: message id, addresses, set and tags', async () => {
    const { MessageId } = await client.send(
      new SendEmailCommand({
        FromEmailAddress: 'mailer@nonprofit-mailer.localhost',
        Destination: {
          ToAddresses: ['bounce@simulator.amazonses.com'],
          CcAddresses: ['board@cc.example.org'],
        },
        ConfigurationSetName: 'NonprofitMailerSet',
        EmailTags: [{ Name: 'job_id', Value: 'job-1' }],
        Content: { Simple: { Subject: { Data: 'Hi' }, Body: { Text: { Data: 'Hi' } } } },
      }),
    );
    expect(sentEmails.find((email) => email.messageId === MessageId)).toMatchObject({
      from: 'mailer@nonprofit-mailer.localhost',
      to: ['bounce@simulator.amazonses.com'],
      cc: ['board@cc.example.org'],
      subject: 'Hi',
      configurationSet: 'NonprofitMailerSet',
      tags: { job_id: 'job-1' },
    });
  });

  it('listens on 127.0.0.1 only', () => {
    expect(listeningAddresses(port)).toEqual(['127.0.0.1']);
  });

  it('leaves nothing listening once stopped, even with a client holding a connection open', async () => {
    const other = await startLocalSes();
    const otherPort = Number(new URL(other.endpoint).port);
    const otherClient = sesClient(other.endpoint);
    // The SDK keeps its connection open after this call; stop closes it along with the server.
    await otherClient.send(new GetAccountCommand({}));

    await other.stop();

    expect(listeningAddresses(otherPort)).toEqual([]);
    await expect(fetch(`${other.inboxUrl}/store`)).rejects.toThrow();
    otherClient.destroy();
  });
});
