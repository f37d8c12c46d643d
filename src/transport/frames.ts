import type { ChatEvent } from '../domain/events.ts';

/**
 * Domain events as wire frames. The same JSON goes out on WebSocket (as the
 * frame) and SSE (as `data:`), so clients parse one shape. Each event is
 * serialised once however many watchers it has.
 */
export type Frame = Record<string, unknown> & { type: string };

export function toFrame(event: ChatEvent): Frame | undefined {
  switch (event.type) {
    case 'chunk':
      return {
        type: 'chunk',
        sessionId: event.sessionId,
        messageId: event.messageId,
        seq: event.seq,
        chunk: event.chunk,
        is_last: event.is_last,
      };
    case 'message.accepted':
      return {
        type: 'accepted',
        sessionId: event.sessionId,
        messageId: event.messageId,
        userMessageId: event.userMessageId,
        text: event.text,
        position: event.position,
      };
    case 'message.completed':
      return {
        type: 'completed',
        sessionId: event.sessionId,
        messageId: event.messageId,
        ...(event.usage ? { usage: event.usage } : {}),
      };
    case 'message.cancelled':
      return { type: 'cancelled', sessionId: event.sessionId, messageId: event.messageId };
    case 'message.failed':
      return {
        type: 'error',
        sessionId: event.sessionId,
        messageId: event.messageId,
        code: event.code,
        message: event.message,
        ...(event.upstreamStatus !== undefined ? { upstreamStatus: event.upstreamStatus } : {}),
      };
    case 'session.restarted':
      return { type: 'restarted', sessionId: event.sessionId, restarts: event.restarts };
    case 'session.stopped':
      return { type: 'stopped', sessionId: event.sessionId, reason: event.reason };
    case 'message.interrupted':
      return { type: 'interrupted', sessionId: event.sessionId, messageId: event.messageId };
    case 'session.started':
      return undefined; // internal: nobody attached can be surprised by it
  }
}

const jsonCache = new WeakMap<ChatEvent, string | null>();

/** The frame's JSON text, or null for events clients do not see. */
export function frameJson(event: ChatEvent): string | null {
  let json = jsonCache.get(event);
  if (json === undefined) {
    const frame = toFrame(event);
    json = frame ? JSON.stringify(frame) : null;
    jsonCache.set(event, json);
  }
  return json;
}

/**
 * An SSE event. Chunks are unnamed (so `EventSource.onmessage` fires) with
 * `id: <seq>`; everything else is named after the domain event, so a client
 * that only wants chunks never sees them.
 */
export function sseEvent(event: ChatEvent): string | null {
  const json = frameJson(event);
  if (json === null) return null;
  if (event.type === 'chunk') return `id: ${event.seq}\ndata: ${json}\n\n`;
  return `event: ${event.type}\ndata: ${json}\n\n`;
}
