import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import { afterEach, describe, expect, it } from 'vitest';
import { SES_SEND_CLIENT_CONFIG } from '../../../lambdas/core/aws-clients';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
});

/** A server that counts requests and never answers, as SES behind a dead connection. */
async function silentServer(): Promise<{ endpoint: string; requests: () => number }> {
  let requests = 0;
  server = createServer(() => {
    requests++;
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${port}`, requests: () => requests };
}

describe("the consumer's SES client", () => {
  it('gives up on a send SES never answers, after one attempt, instead of using up the invocation', async () => {
    const { endpoint, requests } = await silentServer();
    const client = new SESv2Client({
      ...SES_SEND_CLIENT_CONFIG,
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const send = client.send(
      new SendEmailCommand({
        FromEmailAddress: 'news@example.org',
        Destination: { ToAddresses: ['a@example.org'] },
        Content: { Simple: { Subject: { Data: 'Hi' }, Body: { Text: { Data: 'Hi' } } } },
      }),
    );

    await expect(send).rejects.toThrow(/timed? ?out/i);
    // One request: an SDK retry could send an email SES had taken a second time.
    expect(requests()).toBe(1);
    client.destroy();
  }, 20_000);
});
