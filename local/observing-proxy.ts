import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { closeServer } from './processes';

/**
 * One call through the proxy: the AWS JSON protocol's operation (`X-Amz-Target`; `unknown` for a
 * REST protocol, which the method and path tell), both bodies and the status.
 */
export interface Exchange {
  operation: string;
  method: string;
  path: string;
  request: Buffer;
  answer: Buffer;
  status: number;
  /** Milliseconds from the whole request being in to the engine's whole answer: the engine's time, queueing included. */
  engineMs: number;
}

/** An answer the proxy gives itself, for a call the engine behind it does not know. */
export interface LocalAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface ObservingProxy {
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * Forwards every request to `target` unchanged and shows each completed exchange to `observe`
 * before the caller gets the answer, so an observer that writes something down (the SQS journal)
 * has done so by the time the caller goes on. Used between the AWS side of the local runtime and an
 * engine: by the SQS journal, by the benchmark's request counter, in front of the local SES, which
 * `answerLocally` completes with the calls the emulator lacks, and by the IAM gate, whose
 * `answerLocally` refuses what a function's policy does not allow.
 */
export async function startObservingProxy(
  target: string,
  observe: (exchange: Exchange) => void,
  answerLocally?: (call: {
    method: string;
    path: string;
    headers: IncomingHttpHeaders;
    body: Buffer;
  }) => LocalAnswer | undefined,
): Promise<ObservingProxy> {
  const to = new URL(target);
  // Idle upstream sockets close after a second, well before any engine's own keep-alive timeout
  // (Node's servers close theirs after 5 s), so a socket is seldom reused as the engine closes it.
  const upstream = new Agent({ keepAlive: true, timeout: 1_000 });
  const server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const request = Buffer.concat(chunks);
      const method = incoming.method ?? 'GET';
      const path = incoming.url ?? '/';
      // The JSON protocols name the operation in a header; a REST call (SES v2) is its method and path.
      const target = incoming.headers['x-amz-target'];
      const operation = target
        ? (String(target).split('.').pop() ?? String(target))
        : `${method} ${path.split('?')[0]}`;
      let own: LocalAnswer | undefined;
      try {
        own = answerLocally?.({ method, path, headers: incoming.headers, body: request });
      } catch (error) {
        // A call the local answer could not read is the caller's fault: a 400, never the runtime's end.
        own = {
          status: 400,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ message: `Could not read the request: ${String(error)}` }),
        };
      }
      if (own) {
        outgoing.writeHead(own.status, own.headers);
        outgoing.end(own.body);
        return;
      }
      const forwardedAt = performance.now();
      const send = (attempt: number) => {
        const forward = httpRequest(
          {
            agent: upstream,
            host: to.hostname,
            port: to.port,
            method: incoming.method,
            path: incoming.url,
            headers: incoming.headers,
          },
          (response) => {
            const answerChunks: Buffer[] = [];
            // An engine that drops the connection mid-answer gets the caller a 502, never silence.
            const failed = () => {
              if (outgoing.headersSent) outgoing.destroy();
              else {
                outgoing.writeHead(502);
                outgoing.end();
              }
            };
            response.on('error', failed);
            response.on('aborted', failed);
            response.on('data', (chunk: Buffer) => answerChunks.push(chunk));
            response.on('end', () => {
              const answer = Buffer.concat(answerChunks);
              try {
                observe({
                  operation,
                  method,
                  path,
                  request,
                  answer,
                  status: response.statusCode ?? 0,
                  engineMs: performance.now() - forwardedAt,
                });
              } catch {
                // What an observer cannot read is forwarded all the same.
              }
              outgoing.writeHead(response.statusCode ?? 502, response.headers);
              outgoing.end(answer);
            });
          },
        );
        forward.on('error', (error: NodeJS.ErrnoException) => {
          // A kept-alive socket the engine closed as it was reused: the request never reached it, so
          // it is sent once more on a fresh socket (Node's documented remedy), not answered with a 502.
          if (forward.reusedSocket && error.code === 'ECONNRESET' && attempt === 0) {
            send(1);
            return;
          }
          outgoing.writeHead(502);
          outgoing.end();
        });
        forward.end(request);
      };
      send(0);
    });
  });
  // Callers' kept-alive sockets stay open past any pause in their traffic: a server that closed an
  // idle socket as an SDK reused it would answer that call with a reset connection, which the SES
  // transport must treat as "maybe sent" (and so waits out a claim's lease).
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    endpoint: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    stop: () => closeServer(server),
  };
}
