import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SEND_CONCURRENCY } from '../../lambdas/core/jobs/consumer/send-step';
import { STORED_LINK } from '../../lambdas/core/jobs/render-email';
import { maskAddress, signUnsubscribeToken } from '../../lambdas/core/suppressions/unsubscribe-token';
import { textFooter } from '../../lambdas/core/templates/footer';
import { type InboxEmail, readInbox } from '../../local/ses';
import { sqsClient } from '../../local/sqs';
import { LOCAL_FROM_ADDRESS, LOCAL_SENDER } from '../../local/synth';
import { EMAIL_JOBS_CONTEXT } from '../support/e2e-contexts';
import { toldEvents } from '../support/events';
import { localLinkSecret, signVersion1Token } from '../support/link-tokens';
import {
  apiClient,
  isRunning,
  type RuntimeProcess,
  startRuntimeProcess,
  waitFor,
} from '../support/runtime-process';
import { registerNonprofits } from '../support/seed';

const CONTEXT = EMAIL_JOBS_CONTEXT;
/** The consumers at once (`consumerMaxConcurrency`), each with `SEND_CONCURRENCY` sends under way. */
const CONSUMERS = CONTEXT.consumerMaxConcurrency;
const DOMAIN = 'jobs-e2e.example.org';
/** A lost SES answer: the claim's lease (20 s), then the queue's visibility timeout (60 s), and a margin. */
const SLOW_RECOVERY_MS = 120_000;
/** The job of record: three pages of its emails (100 a page), each with a cc copy. */
const JOB_SIZE = 250;

const stateDir = mkdtempSync(join(tmpdir(), 'mailer-jobs-'));
let runtime: RuntimeProcess;
let api: ReturnType<typeof apiClient>;
const registered: string[] = [];

async function start() {
  runtime = await startRuntimeProcess({ stateDir, context: CONTEXT });
  api = apiClient(runtime.url, runtime.apiKey);
}

async function waitForEnd(jobId: string, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await api('GET', `/jobs/${jobId}/status`);
    if (body.status === 'completed' || body.status === 'failed') return body;
    if (Date.now() > deadline) throw new Error(`Job did not end: ${JSON.stringify(body)}`);
    await sleep(200);
  }
}

beforeAll(async () => {
  await start();
  // The tests below use members 0 to 1500.
  const emails = Array.from({ length: 1501 }, (_, n) => `member${String(n).padStart(4, '0')}@${DOMAIN}`);
  await registerNonprofits(api, emails);
  registered.push(...emails);
});

// A failure here is often the runtime's to explain (a timed-out consumer, a failing stream batch):
// its warnings and errors go with the failure.
afterEach(({ task }) => {
  if (task.result?.state !== 'fail' || !runtime) return;
  const told = runtime.output.filter((line) =>
    /\b(WARN|ERROR)\b|failed|timed out|handed over again/.test(line),
  );
  console.error(`The runtime's warnings and errors:\n${told.slice(-60).join('\n')}`);
});

afterAll(async () => {
  await runtime?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('email jobs over HTTP on the local runtime', () => {
  it(`takes a ${JOB_SIZE}-recipient job to completed with every email rendered and listed`, async () => {
    const recipients = registered.slice(0, JOB_SIZE);
    const accepted = await api('POST', '/send-email', {
      emails: recipients,
      template: 'Dear {name}, {{thank you}} for your work at {address}.',
      subject: 'Hello {name}',
      cc: ['board@example.org'],
    });
    expect(accepted.status).toBe(202);
    expect(accepted.body).toMatchObject({
      status: 'queued',
      total_emails: JOB_SIZE,
      job_id: expect.any(String),
    });
    const jobId = String(accepted.body.job_id);
    expect(accepted.headers.get('location')).toBe(`/jobs/${jobId}`);

    // A bound, not a target: on a loaded machine a send can outlast the SES client's 3 s timeout, and
    // its message comes back only after its claim's lease and the queue's visibility timeout.
    const done = await waitForEnd(jobId, SLOW_RECOVERY_MS);
    expect(done).toMatchObject({ status: 'completed', total_emails: JOB_SIZE, sent: JOB_SIZE, failed: 0 });
    expect(done.completed_at).toEqual(expect.any(String));

    const seen: { to: string; status: string }[] = [];
    let path = `/jobs/${jobId}/emails?limit=100`;
    for (let page = 0; page < 20; page++) {
      const { status, body } = await api('GET', path);
      expect(status).toBe(200);
      seen.push(...(body.emails as { to: string; status: string }[]));
      if (body.next_cursor === null) break;
      path = `/jobs/${jobId}/emails?limit=100&cursor=${encodeURIComponent(String(body.next_cursor))}`;
    }
    expect(seen).toHaveLength(JOB_SIZE);
    expect(new Set(seen.map((email) => email.to)).size).toBe(JOB_SIZE);
    expect(seen.every((email) => email.status === 'sent')).toBe(true);
    const first = await api('GET', `/jobs/${jobId}/emails?limit=1`);
    expect((first.body.emails as unknown[])[0]).toEqual({
      to: registered[0],
      cc: ['board@example.org'],
      subject: 'Hello Member 0',
      body: `Dear Member 0, {thank you} for your work at 0 Main St.${textFooter(LOCAL_SENDER, registered[0] as string, STORED_LINK)}`,
      html: null,
      status: 'sent',
      message_id: expect.any(String),
      attempts: 1,
      error: null,
      sent_at: expect.any(String),
      feedback: [],
      copies: [{ to: 'board@example.org', message_id: expect.any(String), error: null }],
    });

    // The local SES received each email once, as documented, and under the id the ledger keeps.
    const inbox = await readInbox(runtime.inboxUrl);
    const byRecipient = new Map<string, typeof inbox>();
    for (const email of inbox)
      for (const to of email.destination.to) byRecipient.set(to, [...(byRecipient.get(to) ?? []), email]);
    expect(recipients.filter((recipient) => byRecipient.get(recipient)?.length !== 1)).toEqual([]);
    expect(byRecipient.get(registered[0] as string)?.[0]).toMatchObject({
      messageId: ((first.body.emails as { message_id: string }[])[0] as { message_id: string }).message_id,
      from: LOCAL_FROM_ADDRESS,
      subject: 'Hello Member 0',
      body: {
        text: expect.stringMatching(/^Dear Member 0, \{thank you\} for your work at 0 Main St\.\n\n-- \n/),
      },
      destination: { to: [registered[0]], cc: [] },
      shown: { to: [registered[0]], cc: ['board@example.org'] },
    });
    // The board got a copy of each email, a message of its own.
    expect(byRecipient.get('board@example.org')).toHaveLength(JOB_SIZE);

    const listed = await api('GET', '/jobs?status=completed');
    expect((listed.body.jobs as { job_id: string }[]).map((job) => job.job_id)).toContain(jobId);

    // The functions' embedded metric lines, gathered by the runtime, count exactly what was sent.
    const metrics = await (await fetch(runtime.url.replace(/\/v1$/, '/_local/metrics'))).text();
    expect(metrics).toContain(`nonprofit_mailer_emails_sent_total{service="nonprofit-mailer"} ${JOB_SIZE}\n`);
    expect(metrics).toContain('nonprofit_mailer_jobs_accepted_total{service="nonprofit-mailer"} 1\n');
    expect(metrics).toMatch(
      new RegExp(
        `nonprofit_mailer_email_latency_milliseconds_count\\{service="nonprofit-mailer"\\} ${JOB_SIZE}\n`,
      ),
    );

    // Told on the stack's bus, each once: accepted, then completed with its final counts.
    const completed = await toldEvents(runtime.eventsUrl, 'Job Completed', { job_id: jobId });
    expect(completed).toHaveLength(1);
    expect(completed[0]?.detail).toMatchObject({
      status: 'completed',
      total_emails: JOB_SIZE,
      sent: JOB_SIZE,
      failed: 0,
    });
    expect(await toldEvents(runtime.eventsUrl, 'Job Accepted', { job_id: jobId })).toHaveLength(1);
  });

  it('records a suppressed recipient suppressed and mails it nothing, until the suppression is lifted', async () => {
    const recipients = registered.slice(1000, 1010);
    const [quiet, other] = recipients as [string, string];
    const put = await api('PUT', `/suppressions/${quiet.toUpperCase()}`, { note: 'asked by phone' });
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ email: quiet, reason: 'manual', note: 'asked by phone' });
    expect((await api('PUT', `/suppressions/${quiet}`)).status).toBe(200);
    const listed = await api('GET', '/suppressions?reason=manual&limit=100');
    expect((listed.body.suppressions as { email: string }[]).map((entry) => entry.email)).toContain(quiet);

    const accepted = await api('POST', '/send-email', { emails: recipients, template: 'Hello {name}' });
    const jobId = String(accepted.body.job_id);
    const done = await waitForEnd(jobId);
    expect(done).toMatchObject({ status: 'completed', total_emails: 10, sent: 9, failed: 0, suppressed: 1 });
    const suppressed = await api('GET', `/jobs/${jobId}/emails?status=suppressed`);
    expect(suppressed.body.emails).toEqual([
      expect.objectContaining({
        to: quiet,
        status: 'suppressed',
        error: 'The address is suppressed (manual).',
      }),
    ]);
    const mailed = (await readInbox(runtime.inboxUrl)).flatMap((email) => email.destination.to);
    expect(mailed).not.toContain(quiet);
    expect(mailed.filter((to) => to === other)).toHaveLength(1);

    // Lifted, with a reason: the next job mails it.
    expect((await api('DELETE', `/suppressions/${quiet}`)).status).toBe(409);
    expect((await api('DELETE', `/suppressions/${quiet}?reason=back+from+leave`)).status).toBe(204);
    expect((await api('GET', `/suppressions/${quiet}`)).status).toBe(404);
    expect((await api('DELETE', `/suppressions/${quiet}?reason=back+from+leave`)).status).toBe(404);
    const again = await api('POST', '/send-email', { emails: [quiet], template: 'Hello again {name}' });
    expect(await waitForEnd(String(again.body.job_id))).toMatchObject({ sent: 1, suppressed: 0 });
  });

  it('answers 400 naming the problem for bad suppression requests, storing nothing', async () => {
    const email = registered[1500] as string;
    const bad = [
      await api('PUT', '/suppressions/not-an-address', {}),
      await api('PUT', `/suppressions/${email}`, { note: 'a\r\nBcc: x@evil.example' }),
      await api('PUT', `/suppressions/${email}`, { reason: 'complained' }),
      await api('GET', '/suppressions?reason=spam'),
      await api('DELETE', `/suppressions/${email}?force=maybe&reason=asked+again+by+phone`),
    ];
    expect(bad.map(({ status }) => status)).toEqual([400, 400, 400, 400, 400]);
    for (const { body } of bad) expect(body.message).toEqual(expect.any(String));
    expect((await api('GET', `/suppressions/${email}`)).status).toBe(404);
  });

  it('unsubscribes a recipient from the one-click link in its email, and mails it nothing after', async () => {
    const recipients = registered.slice(1100, 1105);
    const [leaving] = recipients as [string];
    const first = await api('POST', '/send-email', { emails: recipients, template: 'Hello {name}' });
    const firstJob = String(first.body.job_id);
    await waitForEnd(firstJob);
    const mailedTo = async (address: string) =>
      (await readInbox(runtime.inboxUrl)).filter((email) => email.destination.to.includes(address));
    const [email] = await mailedTo(leaving);
    const header = (name: string) => email?.headers?.find((found) => found.name === name)?.value;
    expect(header('List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
    const link = /^<([^>]+)>$/.exec(header('List-Unsubscribe') ?? '')?.[1] ?? '';
    // The link the runtime's functions make points at this gateway, as in AWS it points at the stage.
    expect(link.startsWith(`${runtime.url}/unsubscribe?token=`)).toBe(true);

    // GET (what a mail scanner or a click does) shows a page with one button and changes nothing.
    const page = await fetch(link);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    // The address masked: whoever holds a link sees only its first letters.
    const shown = await page.text();
    expect(shown).toContain(maskAddress(leaving));
    expect(shown).not.toContain(leaving);
    expect((await api('GET', `/suppressions/${leaving}`)).status).toBe(404);

    // An altered or cut token suppresses nothing.
    const token = new URL(link).searchParams.get('token') ?? '';
    const tampered = `${token.slice(0, 10)}${token[10] === 'A' ? 'B' : 'A'}${token.slice(11)}`;
    for (const bad of [tampered, token.slice(0, -3)]) {
      const refused = await fetch(`${runtime.url}/unsubscribe?token=${encodeURIComponent(bad)}`, {
        method: 'POST',
      });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { message: string }).message).toBe('Invalid unsubscribe link');
    }
    expect((await api('GET', `/suppressions/${leaving}`)).status).toBe(404);

    // The one-click POST a mailbox provider sends (RFC 8058), without an API key.
    const oneClick = await fetch(link, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(oneClick.status).toBe(200);
    // A second click (a provider retrying) changes nothing, and tells nothing more.
    expect((await fetch(link, { method: 'POST', body: 'List-Unsubscribe=One-Click' })).status).toBe(200);
    expect((await api('GET', `/suppressions/${leaving}`)).body).toMatchObject({
      email: leaving,
      reason: 'unsubscribed',
      job_id: firstJob,
      api_key_id: expect.any(String),
    });
    const listed = await api('GET', '/suppressions?reason=unsubscribed');
    expect((listed.body.suppressions as { email: string }[]).map((entry) => entry.email)).toContain(leaving);
    expect(
      await toldEvents(runtime.eventsUrl, 'Recipient Unsubscribed', { email: leaving, job_id: firstJob }),
    ).toHaveLength(1);
    // The email whose link was used notes the unsubscribe once (two clicks), and its job counts it.
    const ledger = (await api('GET', `/jobs/${firstJob}/emails?limit=10`)).body.emails as {
      to: string;
      feedback: object[];
    }[];
    expect(ledger.find((entry) => entry.to === leaving)?.feedback).toMatchObject([
      { type: 'unsubscribe', detail: 'Unsubscribed by the link in this email' },
    ]);
    expect((await api('GET', `/jobs/${firstJob}`)).body).toMatchObject({ unsubscribed: 1 });

    const second = await api('POST', '/send-email', { emails: recipients, template: 'Hello again {name}' });
    expect(await waitForEnd(String(second.body.job_id))).toMatchObject({ sent: 4, suppressed: 1, failed: 0 });
    expect(await mailedTo(leaving)).toHaveLength(1);
    expect(await mailedTo(recipients[1] as string)).toHaveLength(2);
    // The person's own unsubscribe sticks: a bare lift, or one without their renewed consent, is a 409
    // naming what it lacks, and changes nothing.
    const bare = await api('DELETE', `/suppressions/${leaving}`);
    expect(bare.status).toBe(409);
    expect((bare.body.details as { field: string }[]).map(({ field }) => field)).toEqual([
      'query.force',
      'query.reason',
    ]);
    expect((await api('DELETE', `/suppressions/${leaving}?force=true&reason=yes`)).status).toBe(409);
    expect((await api('GET', `/suppressions/${leaving}`)).status).toBe(200);
    // Lifted with the person's consent recorded, so the later tests of this file mail every
    // registered nonprofit; the audit trail keeps the unsubscribe and the lift, who and why.
    const consent = 'She asked to be mailed again, by email on 3 Dec';
    expect(
      (await api('DELETE', `/suppressions/${leaving}?force=true&reason=${encodeURIComponent(consent)}`))
        .status,
    ).toBe(204);
    const trail = await api('GET', `/audit?email=${encodeURIComponent(leaving)}`);
    expect(trail.status).toBe(200);
    expect(trail.body.records).toMatchObject([
      {
        action: 'suppression.lifted',
        email: leaving,
        actor: { source: 'api', api_key_id: expect.any(String) },
        reason: consent,
        details: { force: true, previous: { reason: 'unsubscribed', job_id: firstJob } },
      },
      {
        action: 'suppression.added',
        actor: { source: 'unsubscribe_link' },
        details: { reason: 'unsubscribed' },
      },
    ]);
  });

  it('keeps a link already sent working after its secret rotates; a link says nothing of its reader; a forged key id is refused', async () => {
    const recipients = registered.slice(1110, 1113);
    const [sentBefore, sentAfter, fromVersion1] = recipients as [string, string, string];
    const accepted = await api('POST', '/send-email', { emails: [sentBefore], template: 'Hello {name}' });
    const jobId = String(accepted.body.job_id);
    await waitForEnd(jobId);
    const [email] = (await readInbox(runtime.inboxUrl)).filter((each) =>
      each.destination.to.includes(sentBefore),
    );
    const link =
      /^<([^>]+)>$/.exec(
        email?.headers?.find((found) => found.name === 'List-Unsubscribe')?.value ?? '',
      )?.[1] ?? '';
    const token = new URL(link).searchParams.get('token') ?? '';
    // Nothing in the link names the reader or the job, read as it is or decoded.
    for (const part of token.split('.'))
      for (const text of [part, Buffer.from(part, 'base64url').toString('latin1')])
        for (const secretPart of [sentBefore, sentBefore.split('@')[0] as string, jobId])
          expect(text).not.toContain(secretPart);

    // The unsubscribe function reads the secret (its page shows the reader), then the secret rotates.
    expect(await (await fetch(link)).text()).toContain(maskAddress(sentBefore));
    const secret = localLinkSecret(runtime);
    const before = await secret.current();
    await secret.rotate();
    expect(await secret.previous()).toBe(before);
    const after = await secret.current();
    expect(after).not.toBe(before);
    expect(Object.values(await secret.stages()).sort()).toEqual([['AWSCURRENT'], ['AWSPREVIOUS']]);

    const oneClick = async (value: string) =>
      (
        await fetch(`${runtime.url}/unsubscribe?token=${encodeURIComponent(value)}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'List-Unsubscribe=One-Click',
        })
      ).status;
    const [, oldKeyId, sealed] = token.split('.') as [string, string, string];
    const newLink = signUnsubscribeToken(after, { email: sentAfter, jobId });
    const [, newKeyId] = newLink.split('.');
    expect(newKeyId).not.toBe(oldKeyId);
    // The unsubscribe function reads the secret afresh at most once a second: this waits that out.
    await sleep(1_100);
    // A link sealed under the new version (as consumers make them once they read it) is accepted,
    // by an environment that read the secret before the rotation too: it reads afresh for a key id
    // it has not seen.
    expect(await oneClick(newLink)).toBe(200);
    // A forged key id on a real link's ciphertext, and the new version's id on the old one's: refused.
    for (const forged of [`v2.AAAAAAAAAAA.${sealed}`, `v2.${newKeyId}.${sealed}`])
      expect(await oneClick(forged)).toBe(400);
    expect((await api('GET', `/suppressions/${sentBefore}`)).status).toBe(404);
    // The link sent before the rotation: its version is AWSPREVIOUS, and it still unsubscribes.
    expect(await oneClick(token)).toBe(200);
    // A link from before encryption (version 1, signed with the secret now previous) too.
    expect(await oneClick(signVersion1Token(before, { email: fromVersion1, jobId }))).toBe(200);
    for (const address of recipients)
      expect((await api('GET', `/suppressions/${address}`)).body).toMatchObject({ reason: 'unsubscribed' });
  });

  it('mails an HTML newsletter with its footer to the nonprofit and each cc reader apart, each link unsubscribing its own reader only', async () => {
    const address = `tom-and-jerry@${DOMAIN}`;
    const cc = ['first-copy@cc-e2e.example.org', 'second-copy@cc-e2e.example.org'];
    const created = await api('POST', '/nonprofits', {
      email: address,
      name: 'Tom & Jerry <b>',
      address: '5 Cartoon Lane',
    });
    expect(created.status).toBe(201);
    const job = {
      emails: [address],
      subject: 'News for {name}',
      template: 'Dear {name},\nwe have you at {address}.',
      html: '<html><head><style>p {{ margin: 0 }}</style></head><body><h1>News</h1><p>Dear {name}, we have you at {address}.</p></body></html>',
      cc,
    };

    // The preview shows both parts with their footer, the name escaped in HTML only.
    const preview = await api('POST', '/send-email/preview', job);
    expect(preview.status).toBe(200);
    const [shown] = preview.body.previews as { body: string; html: string }[];
    expect(shown?.body).toContain('Dear Tom & Jerry <b>,');
    expect(shown?.html).toContain('<p>Dear Tom &amp; Jerry &lt;b&gt;, we have you at 5 Cartoon Lane.</p>');
    expect(shown?.html).toContain(`This email was sent to ${address} by ${LOCAL_SENDER.senderName}`);

    const accepted = await api('POST', '/send-email', job);
    expect(accepted.status).toBe(202);
    const jobId = String(accepted.body.job_id);
    // The job counts nonprofits: one, whose email went to three readers.
    expect(await waitForEnd(jobId)).toMatchObject({ status: 'completed', total_emails: 1, sent: 1 });

    const messages = (await readInbox(runtime.inboxUrl)).filter(
      (email) => email.subject === 'News for Tom & Jerry <b>',
    );
    expect(messages.map((email) => email.destination.to[0]).sort()).toEqual([address, ...cc].sort());
    expect(messages.every((email) => email.destination.to.length === 1)).toBe(true);
    const header = (email: InboxEmail, name: string) =>
      email.headers.find((found) => found.name.toLowerCase() === name.toLowerCase())?.value ?? '';
    const links = new Map<string, string>();
    for (const email of messages) {
      const [reader = ''] = email.destination.to;
      // Every reader sees the same To and Cc; only the envelope differs.
      expect(email.shown).toEqual({ to: [address], cc });
      expect(header(email, 'Content-Type')).toMatch(/^multipart\/alternative;/);
      expect(email.body.text).toContain('Dear Tom & Jerry <b>,\nwe have you at 5 Cartoon Lane.');
      expect(email.body.html).toContain(
        '<p>Dear Tom &amp; Jerry &lt;b&gt;, we have you at 5 Cartoon Lane.</p>',
      );
      expect(email.body.html).not.toContain('<b>,');
      // The footer, in both parts: who sent it, from where, to whom, and this reader's own link.
      const link = /^<([^>]+)>/.exec(header(email, 'List-Unsubscribe'))?.[1] ?? '';
      expect(link.startsWith(`${runtime.url}/unsubscribe?token=`)).toBe(true);
      expect(header(email, 'List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
      const sentence = `This email was sent to ${reader} by ${LOCAL_SENDER.senderName}, ${LOCAL_SENDER.senderPostalAddress}.`;
      expect(email.body.text).toContain(`\n-- \n${sentence}\nUnsubscribe: ${link}\n`);
      expect(email.body.html).toContain(sentence);
      expect(email.body.html).toContain(`<a href="${link}"`);
      expect(email.body.html).toMatch(/<\/div><\/body><\/html>$/);
      links.set(reader, link);
    }
    expect(new Set(links.values()).size).toBe(3);

    // The ledger lists each copy with the message id SES gave it.
    const listed = await api('GET', `/jobs/${jobId}/emails`);
    const [ledger] = listed.body.emails as {
      html: string;
      message_id: string;
      copies: { to: string; message_id: string; error: null }[];
    }[];
    const idOf = (reader: string) => messages.find((email) => email.destination.to[0] === reader)?.messageId;
    expect(ledger?.message_id).toBe(idOf(address));
    expect(ledger?.copies).toEqual(cc.map((to) => ({ to, message_id: idOf(to), error: null })));
    expect(ledger?.html).toContain('Dear Tom &amp; Jerry &lt;b&gt;');

    // The first copy's footer link, one click: its reader is suppressed, nobody else.
    const oneClick = await fetch(links.get(cc[0] as string) ?? '', {
      method: 'POST',
      body: 'List-Unsubscribe=One-Click',
    });
    expect(oneClick.status).toBe(200);
    expect((await api('GET', `/suppressions/${cc[0]}`)).body).toMatchObject({
      email: cc[0],
      reason: 'unsubscribed',
      job_id: jobId,
    });
    expect((await api('GET', `/suppressions/${cc[1]}`)).status).toBe(404);
    expect((await api('GET', `/suppressions/${address}`)).status).toBe(404);
    // The copy's reader's unsubscribe is noted on the nonprofit's email it copied, and counted on the job.
    const [noted] = (await api('GET', `/jobs/${jobId}/emails`)).body.emails as { feedback: object[] }[];
    expect(noted?.feedback).toMatchObject([
      { type: 'unsubscribe', detail: `Unsubscribed by the link in the copy to ${cc[0]}` },
    ]);
    expect((await api('GET', `/jobs/${jobId}`)).body).toMatchObject({ unsubscribed: 1 });
    expect(
      (
        await api(
          'DELETE',
          `/suppressions/${cc[0]}?force=true&reason=${encodeURIComponent('asked to be mailed again')}`,
        )
      ).status,
    ).toBe(204);
  });

  it("suppresses the addresses SES's mailbox simulator bounces or complains about, counts each report on the job, and mails them nothing after", async () => {
    const bouncing = 'bounce+e2e@simulator.amazonses.com';
    const complaining = 'complaint+e2e@simulator.amazonses.com';
    const member = registered[1200] as string;
    for (const email of [bouncing, complaining]) {
      expect(
        (await api('POST', '/nonprofits', { email, name: 'Simulated', address: '1 Main St' })).status,
      ).toBe(201);
    }
    const recipients = [bouncing, complaining, member];
    const first = await api('POST', '/send-email', { emails: recipients, template: 'Hello {name}' });
    const jobId = String(first.body.job_id);
    expect(await waitForEnd(jobId)).toMatchObject({ status: 'completed', sent: 3, suppressed: 0 });

    // SES reports a few seconds after the send; the feedback consumer counts each report on the job,
    // then suppresses its address (two writes: the wait covers both, or it may read between them).
    const reported = await waitFor(
      async () => ({
        job: (await api('GET', `/jobs/${jobId}`)).body,
        suppressed: await Promise.all(
          [bouncing, complaining].map(async (email) => (await api('GET', `/suppressions/${email}`)).status),
        ),
      }),
      ({ job, suppressed }) =>
        job.bounced === 1 && job.complained === 1 && suppressed.every((status) => status === 200),
    );
    expect(reported.job).toMatchObject({ sent: 3, bounced: 1, complained: 1, transient_bounces: 0 });
    expect((await api('GET', `/suppressions/${bouncing}`)).body).toMatchObject({
      reason: 'bounced',
      job_id: jobId,
      note: 'Permanent/General: smtp; 550 5.1.1 user unknown',
    });
    expect((await api('GET', `/suppressions/${complaining}`)).body).toMatchObject({
      reason: 'complained',
      job_id: jobId,
    });
    expect((await api('GET', `/suppressions/${member}`)).status).toBe(404);
    const emails = (await api('GET', `/jobs/${jobId}/emails`)).body.emails as {
      to: string;
      feedback: unknown[];
    }[];
    expect(emails.find((email) => email.to === bouncing)?.feedback).toEqual([
      { type: 'bounce', at: expect.any(String), detail: 'Permanent/General: smtp; 550 5.1.1 user unknown' },
    ]);
    expect(emails.find((email) => email.to === member)?.feedback).toEqual([]);
    // Each report told on the bus, once, naming the email.
    expect(await toldEvents(runtime.eventsUrl, 'Email Bounced', { job_id: jobId, email: bouncing })).toEqual([
      expect.objectContaining({
        detail: expect.objectContaining({ bounce_type: 'permanent', version: '1' }),
      }),
    ]);
    expect(
      await toldEvents(runtime.eventsUrl, 'Email Complained', { job_id: jobId, email: complaining }),
    ).toHaveLength(1);

    const second = await api('POST', '/send-email', { emails: recipients, template: 'Hello again {name}' });
    expect(await waitForEnd(String(second.body.job_id))).toMatchObject({ sent: 1, suppressed: 2, failed: 0 });
    const mailed = (await readInbox(runtime.inboxUrl)).flatMap((email) => email.destination.to);
    expect(mailed.filter((to) => to === bouncing)).toHaveLength(1);
    expect(mailed.filter((to) => to === complaining)).toHaveLength(1);
    expect((await api('DELETE', `/suppressions/${complaining}`)).status).toBe(409);
  });

  it('acts once on an SES bounce event put on the local feedback queue, however often it is delivered', async () => {
    const address = registered[1300] as string;
    const sent = await api('POST', '/send-email', { emails: [address], template: 'Hello {name}' });
    const jobId = String(sent.body.job_id);
    await waitForEnd(jobId);
    const [email] = (await api('GET', `/jobs/${jobId}/emails`)).body.emails as { message_id: string }[];
    // AWS's documented bounce record, written by hand, naming this email.
    const event = JSON.parse(
      readFileSync(new URL('../fixtures/ses-events/bounce-permanent.json', import.meta.url), 'utf8'),
    );
    event.bounce.bouncedRecipients[0].emailAddress = address.toUpperCase();
    event.bounce.feedbackId = `e2e-${jobId}`;
    event.mail.messageId = email?.message_id;
    event.mail.tags.job_id = [jobId];
    const [queueUrl] = runtime.sesEventQueues;
    expect(queueUrl).toBeDefined();
    const sqs = sqsClient(new URL(String(queueUrl)).origin);
    for (let delivery = 0; delivery < 3; delivery++) {
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(event) }));
    }
    // Every copy consumed (none waiting, none in flight): only then do the counts prove "once".
    await waitFor(
      async () =>
        (
          await sqs.send(
            new GetQueueAttributesCommand({
              QueueUrl: queueUrl,
              AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
            }),
          )
        ).Attributes ?? {},
      (attributes) =>
        attributes.ApproximateNumberOfMessages === '0' &&
        attributes.ApproximateNumberOfMessagesNotVisible === '0',
    );
    sqs.destroy();

    expect((await api('GET', `/suppressions/${address}`)).body).toMatchObject({
      email: address,
      reason: 'bounced',
      job_id: jobId,
    });
    expect((await api('GET', `/jobs/${jobId}`)).body).toMatchObject({ sent: 1, bounced: 1 });
    const [noted] = (await api('GET', `/jobs/${jobId}/emails`)).body.emails as { feedback: unknown[] }[];
    expect(noted?.feedback).toHaveLength(1);
    expect(
      await toldEvents(runtime.eventsUrl, 'Email Bounced', { feedback_id: `e2e-${jobId}` }),
    ).toHaveLength(1);
    // Lifted, so the later tests of this file mail every registered nonprofit.
    expect((await api('DELETE', `/suppressions/${address}?reason=test+bounce`)).status).toBe(204);
  });

  it('answers 404 listing every unknown recipient, and creates no job', async () => {
    const before = await api('GET', '/jobs?limit=100');
    const response = await api('POST', '/send-email', {
      emails: [registered[0], `ghost1@${DOMAIN}`, `ghost2@${DOMAIN}`],
      template: 'Hi {name}',
    });
    expect(response.status).toBe(404);
    expect(response.body.details).toEqual([
      { field: 'emails[1]', message: `Nonprofit with email ghost1@${DOMAIN} not found.` },
      { field: 'emails[2]', message: `Nonprofit with email ghost2@${DOMAIN} not found.` },
    ]);
    expect((await api('GET', '/jobs?limit=100')).body.jobs).toEqual(before.body.jobs);
  });

  it('answers 400 for templates that are code, naming the placeholder and its position', async () => {
    for (const template of [
      '{name.__class__}',
      'Hi {0}',
      '{name!r}',
      '{address:>30}',
      'Hi {name',
      '{nope}',
    ]) {
      const response = await api('POST', '/send-email', { emails: [registered[0]], template });
      expect(response.status, template).toBe(400);
      expect(JSON.stringify(response.body.details)).toContain('position');
    }
    const before = await api('GET', '/jobs?limit=100');
    for (const html of [
      '<p>Hi</p><script>alert(1)</script>',
      '<img src="x" onerror="alert(1)">',
      '<a href="jav&#x61;script:alert(1)">x</a>',
      '<a href="{address}">x</a>',
      '<p>{nope}</p>',
    ]) {
      const response = await api('POST', '/send-email', { emails: [registered[0]], template: 'Hi', html });
      expect(response.status, html).toBe(400);
      expect(response.body.details, html).toEqual([
        { field: 'html', message: expect.stringContaining('position') },
      ]);
    }
    expect((await api('GET', '/jobs?limit=100')).body.jobs).toEqual(before.body.jobs);
  });

  it('answers 400 for header injection and for emails that could render too large, storing nothing', async () => {
    const before = await api('GET', '/jobs?limit=100');
    const injected = await api('POST', '/nonprofits', {
      email: `injected@${DOMAIN}`,
      name: 'X\r\nBcc: a@evil.example',
      address: '1 Main St',
    });
    expect(injected.status).toBe(400);
    expect(JSON.stringify(injected.body.details)).toContain('control characters');
    expect((await api('GET', `/nonprofits/injected@${DOMAIN}`)).status).toBe(404);
    const renamed = await api('PUT', `/nonprofits/${registered[0]}`, {
      name: 'Member 0',
      address: '0 Main St\nBcc: a@evil.example',
    });
    expect(renamed.status).toBe(400);
    expect((await api('GET', `/nonprofits/${registered[0]}`)).body).toMatchObject({ address: '0 Main St' });

    const subject = await api('POST', '/send-email', {
      emails: [registered[0]],
      template: 'Hi',
      subject: 'Hi {name}\r\nX-Injected: 1',
    });
    expect(subject.status).toBe(400);
    expect(JSON.stringify(subject.body.details)).toContain('subject');
    const huge = await api('POST', '/send-email', {
      emails: [registered[0]],
      template: '{address}'.repeat(11_377),
    });
    expect(huge.status).toBe(400);
    expect(JSON.stringify(huge.body.details)).toContain('262,144 bytes');
    expect((await api('GET', '/jobs?limit=100')).body.jobs).toEqual(before.body.jobs);
  });

  it('returns the same job for a resubmission with the same Idempotency-Key, and 409 for another body', async () => {
    const body = { emails: registered.slice(0, 3), template: 'Hi {name}' };
    const first = await api('POST', '/send-email', body, { 'Idempotency-Key': 'e2e-order-42' });
    const again = await api('POST', '/send-email', body, { 'Idempotency-Key': 'e2e-order-42' });
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.body.job_id).toBe(first.body.job_id);

    const other = await api(
      'POST',
      '/send-email',
      { ...body, template: 'Bye {name}' },
      { 'Idempotency-Key': 'e2e-order-42' },
    );
    expect(other.status).toBe(409);
    expect((await waitForEnd(String(first.body.job_id))).sent).toBe(3);
  });

  it('answers 404 for an unknown job and 400 for a malformed job id', async () => {
    expect((await api('GET', '/jobs/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await api('GET', '/jobs/not-a-job/emails')).status).toBe(400);
  });

  it('completes a job with exact counts when the runtime is killed and restarted in the middle of it', async () => {
    // Enough that the kill lands mid-job; each email more is only CPU time on a shared machine.
    const recipients = registered.slice(0, 600);
    const accepted = await api('POST', '/send-email', { emails: recipients, template: 'Hello {name}' });
    expect(accepted.status).toBe(202);
    const jobId = String(accepted.body.job_id);
    for (let polls = 0; polls < 300; polls++) {
      const { body } = await api('GET', `/jobs/${jobId}/status`);
      if (Number(body.sent) > 0) break;
      await sleep(20);
    }
    const midway = (await api('GET', `/jobs/${jobId}/status`)).body;
    expect(Number(midway.sent)).toBeLessThan(recipients.length);

    // SIGKILL: no clean-up at all. Local SQS (in memory) dies with the process; its journal on disk
    // brings back what was sent and not yet deleted, so the job resumes at once.
    await runtime.stop('SIGKILL');
    await start();
    expect(runtime.output.join('\n')).toMatch(
      /\[sqs\] \d+ messages the previous run left in its queues were sent again/,
    );

    const done = await waitForEnd(jobId, SLOW_RECOVERY_MS);
    expect(done).toMatchObject({
      status: 'completed',
      total_emails: recipients.length,
      sent: recipients.length,
      failed: 0,
    });
    // The local inbox lives in memory and restarted empty: it holds what was sent after the restart,
    // none twice. Besides those not sent before the kill, only emails being handed to SES at the kill
    // (their message id not written yet: the README's window that can send twice) go again, at most
    // the sends the consumers had under way.
    // The README's other window: a send SES did not answer in time (the local SES, on a loaded
    // machine, past the client's 3 s) may have left, and goes again after its claim's lease. Only
    // such a recipient may be in the inbox twice, each once more at most.
    const resent = (await readInbox(runtime.inboxUrl)).flatMap((email) => email.destination.to);
    const unanswered = runtime.output.filter(
      (line) => line.includes('The transport did not answer') && line.includes(jobId),
    ).length;
    expect(resent.length).toBeLessThanOrEqual(
      recipients.length - Number(midway.sent) + CONSUMERS * SEND_CONCURRENCY + unanswered,
    );
    expect(resent.length - new Set(resent).size).toBeLessThanOrEqual(unanswered);
    const pending = await api('GET', `/jobs/${jobId}/emails?status=pending&limit=100`);
    expect(pending.body.emails).toEqual([]);
    // The event log is kept across the kill, as the outbox's stream position is: each fact is one
    // event. Delivery is at least once (README, "Events"): a kill between the bus taking a batch and
    // the stream's position moving past it puts that batch again, under the same event ids.
    for (const type of ['Job Accepted', 'Job Completed'] as const) {
      const told = await toldEvents(runtime.eventsUrl, type, { job_id: jobId });
      expect(told.length).toBeGreaterThanOrEqual(1);
      expect(new Set(told.map((event) => (event.detail as { event_id: string }).event_id)).size).toBe(1);
    }
  });
});

describe('GET /health on the local runtime', () => {
  /** The details, with the operator's key: every check, and a code for each that failed. */
  const health = async () => {
    const response = await fetch(`${runtime.url}/health/details`, {
      headers: { 'x-api-key': runtime.apiKey },
    });
    return {
      status: response.status,
      body: (await response.json()) as {
        status: string;
        checks: Record<string, { status: string; code?: string }>;
      },
    };
  };
  /** The report is cached for a second (healthCacheSeconds): wait until a fresh one says what we expect. */
  const until = async (expected: number) => {
    for (let attempt = 0; attempt < 30; attempt++) {
      const answer = await health();
      if (answer.status === expected) return answer;
      await sleep(1_000);
    }
    return health();
  };

  it('answers without an API key only the verdict, 503 while DynamoDB Local does not answer, and 200 again once it does', async () => {
    const anyone = await fetch(`${runtime.url}/health`);
    expect(anyone.status).toBe(200);
    expect(await anyone.json()).toEqual({ status: 'healthy', checked_at: expect.any(String) });
    // The details need a key.
    expect((await fetch(`${runtime.url}/health/details`)).status).toBe(403);
    const before = await health();
    expect(before.status).toBe(200);
    expect(before.body.checks.dynamodb?.status).toBe('ok');
    // The local stack's sender identity, read with GetEmailIdentity through the IAM gate.
    expect(before.body.checks.identity).toEqual({
      status: 'ok',
      name: 'nonprofit-mailer.localhost',
      verification: 'SUCCESS',
      dkim: 'SUCCESS',
      mail_from: 'SUCCESS',
    });

    const java = runtime.javaPid();
    process.kill(java, 'SIGSTOP');
    try {
      const down = await until(503);
      expect(down.status).toBe(503);
      // A stable code; the SDK's own text (hosts, ports) stays in the function's log.
      expect(down.body).toMatchObject({
        status: 'unhealthy',
        checks: { dynamodb: { status: 'error', code: 'timeout' } },
      });
      const anyoneDown = await fetch(`${runtime.url}/health`);
      expect(anyoneDown.status).toBe(503);
      expect(await anyoneDown.json()).toEqual({ status: 'unhealthy', checked_at: expect.any(String) });
    } finally {
      process.kill(java, 'SIGCONT');
    }
    const back = await until(200);
    expect(back.status).toBe(200);
    expect(back.body.checks.dynamodb?.status).toBe('ok');
  });

  it('starts a crashed DynamoDB Local again, with its data, and is healthy once it answers', async () => {
    const java = runtime.javaPid();
    process.kill(java, 'SIGKILL');
    // The restart takes a few seconds, often less than /health's cache: wait for the new process.
    for (
      let attempt = 0;
      attempt < 60 && (runtime.javaPid() === java || !isRunning(runtime.javaPid()));
      attempt++
    )
      await sleep(500);
    expect(runtime.javaPid()).not.toBe(java);

    await sleep(6_000); // past the report cached before the crash
    const back = await until(200);
    expect(back.body.checks.dynamodb?.status).toBe('ok');
    expect((await api('GET', `/nonprofits/${registered[0]}`)).status).toBe(200);
    expect(runtime.output.join('\n')).toContain('DynamoDB Local exited');
  });
});
