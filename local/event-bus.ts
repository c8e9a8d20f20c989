import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { closeServer } from './processes';
import {
  type CfnTemplate,
  type IntrinsicResolver,
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  resourcesOfType,
} from './template';

/**
 * EventBridge for the local runtime: the template's event buses (and `default`) take `PutEvents`
 * as EventBridge does, and every event put is kept, in the shape a rule's target receives it, in a
 * JSON-lines file under the state folder (so the log survives a restart). `GET /events` lists them
 * (`?detail-type=`, `?source=` narrow it), which is where a developer, or a test, reads what the
 * stack told. Rules are not run: a subscription is the user's own rule in AWS.
 */
export interface LocalEventBus {
  endpoint: string;
  /** The list of events put on any bus (JSON). */
  eventsUrl: string;
  stop(): Promise<void>;
}

/** An event as EventBridge hands it to a rule's target (with the bus it was put on). */
export interface DeliveredEvent {
  version: '0';
  id: string;
  'detail-type': string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: unknown;
  'event-bus-name': string;
}

/** EventBridge's limit on one PutEvents call: ten entries, 256 KB in all. */
const MAX_ENTRIES = 10;
const MAX_REQUEST_BYTES = 256 * 1024;

interface PutEventsEntry {
  EventBusName?: unknown;
  Source?: unknown;
  DetailType?: unknown;
  Detail?: unknown;
  Time?: unknown;
  Resources?: unknown;
}

export async function startLocalEventBus(options: {
  template: CfnTemplate;
  resolver: IntrinsicResolver;
  /** The event log (JSON lines), kept across restarts. */
  file: string;
}): Promise<LocalEventBus> {
  const buses = new Set(['default']);
  for (const [logicalId, resource] of resourcesOfType(options.template, 'AWS::Events::EventBus')) {
    const name = String(options.resolver.resolve(resource.Properties?.Name ?? logicalId));
    buses.add(name);
    // `Ref` of a bus is its name; its ARN names it after `event-bus/`.
    options.resolver.register(logicalId, {
      ref: name,
      attributes: {
        Arn: `arn:aws:events:${LOCAL_REGION}:${LOCAL_ACCOUNT}:event-bus/${name}`,
        Name: name,
      },
    });
  }
  // A bus the stack uses but does not create (`eventBusName`) exists in the account in AWS: here,
  // every bus a function may put events on (its role's PutEvents resources) is taken as existing.
  for (const [, policy] of resourcesOfType(options.template, 'AWS::IAM::Policy')) {
    let document: string;
    try {
      document = JSON.stringify(options.resolver.resolve(policy.Properties?.PolicyDocument));
    } catch {
      continue;
    }
    for (const match of document.matchAll(/arn:aws:events:[^:"]*:[^:"]*:event-bus\/([^"*]+)/g))
      if (match[1]) buses.add(match[1]);
  }
  const events: DeliveredEvent[] = existsSync(options.file)
    ? readFileSync(options.file, 'utf8')
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as DeliveredEvent)
    : [];

  const busNameOf = (value: unknown) => {
    const named = typeof value === 'string' && value !== '' ? value : 'default';
    return named.startsWith('arn:') ? (named.split('event-bus/')[1] ?? named) : named;
  };

  /** One entry put, or why it was refused (EventBridge answers per entry). */
  const put = (entry: PutEventsEntry): { EventId: string } | { ErrorCode: string; ErrorMessage: string } => {
    const bus = busNameOf(entry.EventBusName);
    if (!buses.has(bus))
      return { ErrorCode: 'ResourceNotFoundException', ErrorMessage: `Event bus ${bus} does not exist.` };
    for (const field of ['Source', 'DetailType', 'Detail'] as const) {
      if (typeof entry[field] !== 'string' || entry[field] === '')
        return { ErrorCode: 'InvalidArgument', ErrorMessage: `Parameter ${field} is not valid.` };
    }
    let detail: unknown;
    try {
      detail = JSON.parse(entry.Detail as string);
    } catch {
      detail = undefined;
    }
    if (typeof detail !== 'object' || detail === null || Array.isArray(detail))
      return { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' };
    // The SDK sends a time as seconds since the epoch; EventBridge shows it to the second.
    const time =
      typeof entry.Time === 'number'
        ? new Date(entry.Time * 1000)
        : new Date(Math.floor(Date.now() / 1000) * 1000);
    const event: DeliveredEvent = {
      version: '0',
      id: randomUUID(),
      'detail-type': entry.DetailType as string,
      source: entry.Source as string,
      account: LOCAL_ACCOUNT,
      time: time.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      region: LOCAL_REGION,
      resources: Array.isArray(entry.Resources) ? entry.Resources.map(String) : [],
      detail,
      'event-bus-name': bus,
    };
    appendFileSync(options.file, `${JSON.stringify(event)}\n`, { mode: 0o600 });
    events.push(event);
    return { EventId: event.id };
  };

  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const answer = (status: number, body: unknown) => {
        response.writeHead(status, {
          'content-type': request.method === 'GET' ? 'application/json' : 'application/x-amz-json-1.1',
        });
        response.end(JSON.stringify(body));
      };
      const url = new URL(request.url ?? '/', 'http://localhost');
      if (request.method === 'GET' && url.pathname === '/events') {
        const detailType = url.searchParams.get('detail-type');
        const source = url.searchParams.get('source');
        answer(
          200,
          events.filter(
            (event) =>
              (detailType === null || event['detail-type'] === detailType) &&
              (source === null || event.source === source),
          ),
        );
        return;
      }
      const target = String(request.headers['x-amz-target'] ?? '');
      if (request.method !== 'POST' || target !== 'AWSEvents.PutEvents') {
        answer(400, {
          __type: 'UnsupportedOperation',
          message: `${target || `${request.method} ${url.pathname}`} is not supported locally`,
        });
        return;
      }
      const body = Buffer.concat(chunks);
      let entries: PutEventsEntry[];
      try {
        entries = (JSON.parse(body.toString('utf8')) as { Entries?: PutEventsEntry[] }).Entries ?? [];
      } catch {
        answer(400, { __type: 'ValidationException', message: 'The request body is not JSON' });
        return;
      }
      if (entries.length === 0 || entries.length > MAX_ENTRIES || body.length > MAX_REQUEST_BYTES) {
        answer(400, {
          __type: 'ValidationException',
          message: `Entries must hold 1 to ${MAX_ENTRIES} events of at most ${MAX_REQUEST_BYTES} bytes in all`,
        });
        return;
      }
      const results = entries.map(put);
      answer(200, {
        FailedEntryCount: results.filter((result) => 'ErrorCode' in result).length,
        Entries: results,
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const endpoint = `http://127.0.0.1:${port}`;
  return { endpoint, eventsUrl: `${endpoint}/events`, stop: () => closeServer(server) };
}
