import type { ChunkEvent } from '../domain/events.ts';
import type { EventBus, Logger, SessionStore } from '../domain/ports.ts';

/**
 * The bus, with resume that reaches back into the store: when the bus's
 * recent log does not start right after the client's position (this node
 * restarted, or never saw the stream), the chunks the store kept for a reply
 * still streaming (or interrupted) fill the gap, up to its last flush.
 */
export function withStoredReplay(bus: EventBus, store: SessionStore, logger: Logger): EventBus {
  return {
    publish: (event) => bus.publish(event),
    subscribe: (sessionId, listener) => bus.subscribe(sessionId, listener),
    subscribeAll: (listener) => bus.subscribeAll(listener),
    forget: (sessionId) => bus.forget(sessionId),
    ready: (sessionId) => bus.ready?.(sessionId) ?? Promise.resolve(),
    close: () => bus.close(),
    async replay(sessionId, afterSeq) {
      const live = await bus.replay(sessionId, afterSeq);
      const firstLive = live[0]?.seq ?? Number.POSITIVE_INFINITY;
      if (firstLive <= afterSeq + 1) return live;
      let stored: readonly ChunkEvent[];
      try {
        stored = await store.chunksAfter(sessionId, afterSeq);
      } catch (error) {
        // Resume degrades to what this node holds; history stays readable over REST.
        logger.warn({ sessionId, err: String(error) }, 'stored chunk log unavailable for resume');
        return live;
      }
      return [...stored.filter((chunk) => chunk.seq < firstLive), ...live];
    },
  };
}
