import type { ChatEvent, ChatEventMap } from '../domain/events.ts';
import type { SessionId } from '../domain/ids.ts';
import type { EventBus } from '../domain/ports.ts';
import { ChunkLog } from './chunkLog.ts';
import { createEmitter } from './typedMitt.ts';

export interface InProcessBusOptions {
  /** Chunks kept per session for resume (default 1,000)… */
  replayLogSize?: number;
  /** …and at most this many bytes of their text (default 1 MiB; see chunkBytes). */
  replayLogBytes?: number;
  /** A listener that throws is isolated from the publisher and its neighbours. */
  onListenerError?: (error: unknown, event: ChatEvent) => void;
}

/**
 * The embedded event bus. Two typed mitt emitters: one keyed by session id,
 * so publishing a chunk is one Map lookup whether 10 or 100,000 sessions
 * exist (no broadcast-and-filter), and one keyed by event name for
 * node-wide listeners (metrics, inspection), used only when someone listens.
 */
export function createInProcessBus(options: InProcessBusOptions = {}): EventBus {
  const replayLogSize = options.replayLogSize ?? 1000;
  const replayLogBytes = options.replayLogBytes ?? 1024 * 1024;
  const onListenerError = options.onListenerError ?? (() => {});
  const bySession = createEmitter<Record<SessionId, ChatEvent>>();
  const everything = createEmitter<ChatEventMap>();
  const logs = new Map<SessionId, ChunkLog>();
  let everythingListeners = 0;

  const guarded = (listener: (event: ChatEvent) => void) => (event: ChatEvent) => {
    try {
      listener(event);
    } catch (error) {
      onListenerError(error, event);
    }
  };

  return {
    publish(event: ChatEvent) {
      if (event.type === 'chunk' && replayLogSize > 0 && replayLogBytes > 0) {
        let log = logs.get(event.sessionId);
        if (!log) {
          log = new ChunkLog(replayLogSize, replayLogBytes);
          logs.set(event.sessionId, log);
        }
        log.append(event);
      }
      // mitt's emit copies the handler list and maps over it with a new closure (three
      // objects per event, 1.6 KB of a reply's garbage); one watcher, the usual case, is called as it is.
      const handlers = bySession.all.get(event.sessionId) as ((event: ChatEvent) => void)[] | undefined;
      if (handlers?.length === 1) handlers[0]!(event);
      else if (handlers) for (const handler of handlers.slice()) handler(event);
      if (everythingListeners > 0) everything.emit(event.type, event as never);
    },

    subscribe(sessionId, listener) {
      const handler = guarded(listener);
      bySession.on(sessionId, handler);
      let subscribed = true;
      return () => {
        if (!subscribed) return;
        subscribed = false;
        bySession.off(sessionId, handler);
        // mitt keeps an empty handler list per key; drop it so ended sessions cost nothing.
        if (bySession.all.get(sessionId)?.length === 0) bySession.all.delete(sessionId);
      };
    },

    subscribeAll(listener) {
      const guardedListener = guarded(listener);
      const handler = (_type: keyof ChatEventMap, event: ChatEvent) => guardedListener(event);
      everything.on('*', handler);
      everythingListeners += 1;
      let subscribed = true;
      return () => {
        if (!subscribed) return;
        subscribed = false;
        everything.off('*', handler);
        everythingListeners -= 1;
      };
    },

    async replay(sessionId, afterSeq) {
      return logs.get(sessionId)?.after(afterSeq) ?? [];
    },

    forget(sessionId) {
      logs.delete(sessionId);
    },

    async close() {
      bySession.all.clear();
      everything.all.clear();
      logs.clear();
      everythingListeners = 0;
    },
  };
}
