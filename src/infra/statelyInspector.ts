import type { InspectionEvent, Observer } from 'xstate';
import type { Logger } from '../domain/ports.ts';

export interface StatelyForwarder {
  /** Give this to every session's actor (ChatServerOptions.inspect). */
  inspect: Observer<InspectionEvent>;
  stop(): Promise<void>;
}

// Contexts hold the conversation and the deps (bus, store, provider): forward
// a flat summary, never the objects (secrets, size, cycles).
function safeContext(context: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (context === null || typeof context !== 'object') return out; // promise actors have none
  for (const [key, value] of Object.entries(context)) {
    if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) out[key] = value;
    else if (Array.isArray(value)) out[key] = `[${value.length} items]`;
    else if (value !== undefined) out[key] = '[object]';
  }
  return out;
}

/**
 * Forwards every session's inspection events to a `@statelyai/inspect`
 * WebSocket relay (`createInspectorServer`, or Stately's tool), for users who
 * prefer it to the built-in `/inspector`. Events are reduced to their type and
 * contexts to a flat summary. It stringifies every snapshot: expect a large
 * throughput cost (about 80% measured), so it is opt-in. The package is
 * ESM-only and loaded only when asked for.
 */
export async function connectStately(url: string, logger: Logger): Promise<StatelyForwarder> {
  const { createWebSocketInspector } = await import('@statelyai/inspect');
  const inspector = createWebSocketInspector({
    url,
    sanitizeContext: (context) => safeContext(context as Record<string, unknown> | undefined),
    sanitizeEvent: (event) => ({ type: event.type }),
  });
  logger.info({ url }, 'forwarding inspection events to a Stately inspector');
  return {
    inspect: inspector.inspect,
    async stop() {
      inspector.stop();
    },
  };
}
