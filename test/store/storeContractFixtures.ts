import type { ConversationRecord } from '../../src/domain/conversationRecord.ts';
import type { ChunkEvent } from '../../src/domain/events.ts';
import type { Message } from '../../src/domain/message.ts';
import type { SessionUpdate } from '../../src/domain/ports.ts';

/** Builders shared by the SessionStore contract's checks (storeContract.ts, storeContractWrites.ts). */

export const T0 = 1_700_000_000_000;
export const sid = (n: number) => `contract${String(n).padStart(14, '0')}`;

export function record(n: number, overrides: Partial<ConversationRecord> = {}): ConversationRecord {
  return { sessionId: sid(n), createdAt: T0 + n, lastActiveAt: T0 + n, lastSeq: 0, seqReserved: 0, stopped: false, messages: [], ...overrides };
}

// Each message id gets its own place unless a test says otherwise (ids are per test, orders per session).
let places = new Map<string, number>();
/** Forgets every place given so far: called before each test. */
export function resetMessagePlaces(): void {
  places = new Map();
}
export function message(id: string, overrides: Partial<Message> = {}): Message {
  if (!places.has(id)) places.set(id, 2 * (places.size + 1));
  return { id, order: places.get(id)!, role: 'user', content: id, status: 'complete', createdAt: T0, updatedAt: T0, ...overrides };
}

export function chunk(sessionId: string, messageId: string, seq: number, text = `c${seq}`, last = false): ChunkEvent {
  return { type: 'chunk', sessionId, messageId, seq, chunk: text, is_last: last };
}

export function update(sessionId: string, messages: Message[], extra: Partial<SessionUpdate> = {}): SessionUpdate {
  return { sessionId, lastSeq: 0, seqReserved: 0, lastActiveAt: T0, stopped: false, messages, ...extra };
}
