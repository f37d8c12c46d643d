import { ChatError } from '../domain/errors.ts';

/** Parses a resume position (`Last-Event-ID`, `lastSeq`): a whole number ≥ 0, or absent. */
export function parseSeq(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  if (!/^\d{1,15}$/.test(value)) throw new ChatError('bad_request', 'A resume position must be a whole number.');
  return Number(value);
}
