import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { BusEntry, EventBus } from './publish';

/** The stack's bus on EventBridge (its own, or the one named with `eventBusName`). */
export class EventBridgeBus implements EventBus {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly busName: string,
  ) {}

  async put(entries: readonly BusEntry[]): Promise<boolean[]> {
    const { Entries = [] } = await this.client.send(
      new PutEventsCommand({
        Entries: entries.map((entry) => ({
          EventBusName: this.busName,
          Source: entry.source,
          DetailType: entry.detailType,
          Detail: entry.detail,
          Time: entry.time,
        })),
      }),
    );
    // An entry the bus took has an EventId; a refused one an ErrorCode (throttled, internal).
    return entries.map((_, index) => Entries[index]?.EventId !== undefined && !Entries[index]?.ErrorCode);
  }
}
