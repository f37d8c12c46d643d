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
        ...(event.toolResults ? { toolResults: event.toolResults } : {}),
      };
    case 'message.tool_calls':
      // The fragments in OpenAI's own `delta.tool_calls` shape, so one parser serves both.
      return {
        type: 'tool_calls',
        sessionId: event.sessionId,
        messageId: event.messageId,
        toolCalls: event.toolCalls.map((delta) => ({
          index: delta.index,
          ...(delta.id !== undefined ? { id: delta.id, type: 'function' } : {}),
          function: { ...(delta.name !== undefined ? { name: delta.name } : {}), ...(delta.arguments !== undefined ? { arguments: delta.arguments } : {}) },
        })),
      };
    case 'message.completed':
      return {
        type: 'completed',
        sessionId: event.sessionId,
        messageId: event.messageId,
        ...(event.usage ? { usage: event.usage } : {}),
        finishReason: event.finishReason,
        ...(event.toolCalls ? { toolCalls: event.toolCalls } : {}),
        ...(event.model !== undefined ? { model: event.model } : {}),
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
        ...(event.retryAfterMs !== undefined ? { retryAfterMs: event.retryAfterMs } : {}),
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

// A publish hands one event to all its watchers one after another, so a
// single-slot cache serialises it once; a WeakMap did the same but cost GC
// work (ephemerons) for every event, watched once or not.
let lastEvent: ChatEvent | undefined;
let lastJson: string | null = null;

/** The frame's JSON text, or null for events clients do not see. */
export function frameJson(event: ChatEvent): string | null {
  if (event !== lastEvent) {
    const frame = toFrame(event);
    lastJson = frame ? JSON.stringify(frame) : null;
    lastEvent = event;
  }
  return lastJson;
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
