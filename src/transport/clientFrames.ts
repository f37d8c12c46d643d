import { z } from 'zod';
import { ChatError } from '../domain/errors.ts';
import { assertCleanJson, assertCleanText } from './inputRules.ts';

/** What a WebSocket client may send. Plain text (the seed's protocol) is a message. */
export type ClientFrame = { type: 'message'; text: string } | { type: 'cancel' };

const jsonFrame = z.discriminatedUnion('type', [
  z.object({ type: z.literal('message'), text: z.string() }),
  z.object({ type: z.literal('cancel') }),
]);

export function parseClientFrame(raw: string): ClientFrame {
  // Anything that does not look like JSON is the seed's plain-text message.
  if (!raw.trimStart().startsWith('{')) {
    assertCleanText(raw, 'the message');
    return { type: 'message', text: raw };
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new ChatError('bad_request', 'The frame starts with "{" but is not valid JSON.');
  }
  assertCleanJson(value, 'the frame');
  const parsed = jsonFrame.safeParse(value);
  if (!parsed.success) {
    throw new ChatError('bad_request', 'Expected {"type":"message","text":"…"} or {"type":"cancel"}.');
  }
  return parsed.data;
}
