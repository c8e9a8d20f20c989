/**
 * An item as `ReturnValuesOnConditionCheckFailure` hands it back: the document client leaves it
 * marshalled (`{S: '…'}`, `{N: '3'}`), where other answers come unmarshalled. These read either.
 */
export type RawItem = Record<string, unknown>;

const raw = (item: RawItem | undefined, name: string, type: 'S' | 'N'): string | undefined => {
  const value = item?.[name];
  if (typeof value === 'string' || typeof value === 'number') return String(value);
  const marshalled = (value as Record<string, unknown> | undefined)?.[type];
  return typeof marshalled === 'string' ? marshalled : undefined;
};

export const rawString = (item: RawItem | undefined, name: string): string | undefined =>
  raw(item, name, 'S');

export const rawNumber = (item: RawItem | undefined, name: string): number | undefined => {
  const value = raw(item, name, 'N');
  return value === undefined ? undefined : Number(value);
};
