import type { SQSEvent } from 'aws-lambda';
import type { ReceivedMessage } from '../core/jobs/process-emails';

export function receivedMessages(event: SQSEvent): ReceivedMessage[] {
  return event.Records.map((record) => ({
    messageId: record.messageId,
    body: record.body,
    receiveCount: Number(record.attributes?.ApproximateReceiveCount ?? 1),
  }));
}

/** One JSON line per event, as the functions' JSON log format expects. */
export function logLine(
  level: 'INFO' | 'WARN' | 'ERROR',
  message: string,
  detail: Record<string, unknown> = {},
): void {
  const line = JSON.stringify({ level, message, ...detail });
  if (level === 'ERROR') console.error(line);
  else console.log(line);
}
