import { createServer, type Server } from 'node:http';
import type { ApiKeyModel } from './api-model';
import { closeServer } from './processes';

/**
 * API Gateway's control plane, as much of it as functions call locally: `GetApiKey` (`GET
 * /apikeys/{id}`, with `includeValue=true` for its value), answered from the template's keys and the
 * values the runtime keeps for them, so an authorizer looks keys up locally as it does in AWS.
 */
export interface LocalApiGatewayKeys {
  endpoint: string;
  stop(): Promise<void>;
}

export async function startLocalApiGatewayKeys(
  keys: readonly ApiKeyModel[],
  values: ReadonlyMap<string, string>,
): Promise<LocalApiGatewayKeys> {
  const server: Server = createServer((request, response) => {
    const answer = (status: number, body: unknown, errorType?: string) => {
      response.writeHead(status, {
        'content-type': 'application/json',
        ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
      });
      response.end(JSON.stringify(body));
    };
    request.resume();
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://localhost');
      const id = /^\/apikeys\/([^/]+)$/.exec(url.pathname)?.[1];
      if (request.method !== 'GET' || id === undefined) {
        answer(
          400,
          { message: `${request.method} ${url.pathname} is not supported locally` },
          'BadRequestException',
        );
        return;
      }
      const key = keys.find((candidate) => candidate.id === decodeURIComponent(id));
      const value = key && values.get(key.id);
      if (!key || value === undefined) {
        answer(404, { message: 'Invalid API Key identifier specified' }, 'NotFoundException');
        return;
      }
      answer(200, {
        id: key.id,
        name: key.logicalId,
        enabled: key.enabled,
        ...(key.description === undefined ? {} : { description: key.description }),
        ...(url.searchParams.get('includeValue') === 'true' ? { value } : {}),
        stageKeys: [],
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => closeServer(server) };
}
