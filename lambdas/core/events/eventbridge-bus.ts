import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { BusEntry, EntryResult, EventBus } from './publish';

/** The stack's bus on EventBridge (its own, or the one named with `eventBusName`). */
export class EventBridgeBus implements EventBus {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly busName: string,
  ) {}

  async put(entries: readonly BusEntry[]): Promise<EntryResult[]> {
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
    // An entry the bus took has an EventId; a refused one an ErrorCode (throttled, internal, malformed).
    return entries.map((_, index) => {
      const answer = Entries[index];
      if (answer?.EventId !== undefined && !answer.ErrorCode) return { taken: true };
      return { taken: false, code: answer?.ErrorCode ?? 'NoAnswer', message: answer?.ErrorMessage };
    });
  }
}
