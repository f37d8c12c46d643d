import type { Emitter } from 'mitt';
import type { ChatEvent, ChatEventMap } from '../domain/events.ts';
import type { SessionId } from '../domain/ids.ts';
import type { EventBus } from '../domain/ports.ts';
import { ChunkLog } from './chunkLog.ts';
import { createEmitter } from './typedMitt.ts';

export interface InProcessBusOptions {
  /** Chunks kept per session for resume (default 1,000). */
  replayLogSize?: number;
  /** A listener that throws is isolated from the publisher and its neighbours. */
  onListenerError?: (error: unknown, event: ChatEvent) => void;
}

interface Channel {
  emitter: Emitter<ChatEventMap>;
  listeners: number;
  log: ChunkLog | undefined;
}

/**
 * The embedded event bus: one typed mitt emitter per session, found in a Map,
 * so publishing a chunk costs the same at 10 or 100,000 sessions (no
 * broadcast-and-filter). A channel lives while it has listeners or a log.
 */
export function createInProcessBus(options: InProcessBusOptions = {}): EventBus {
  const replayLogSize = options.replayLogSize ?? 1000;
  const onListenerError = options.onListenerError ?? (() => {});
  const guarded = (listener: (event: ChatEvent) => void) => (_type: keyof ChatEventMap, event: ChatEvent) => {
    try {
      listener(event);
    } catch (error) {
      onListenerError(error, event);
    }
  };
  const channels = new Map<SessionId, Channel>();
  const everything = createEmitter<ChatEventMap>();
  let everythingListeners = 0;

  const channelFor = (sessionId: SessionId): Channel => {
    let channel = channels.get(sessionId);
    if (!channel) {
      channel = { emitter: createEmitter<ChatEventMap>(), listeners: 0, log: undefined };
      channels.set(sessionId, channel);
    }
    return channel;
  };

  const release = (sessionId: SessionId, channel: Channel) => {
    if (channel.listeners === 0 && channel.log === undefined) channels.delete(sessionId);
  };

  return {
    publish(event: ChatEvent) {
      let channel = channels.get(event.sessionId);
      if (event.type === 'chunk' && replayLogSize > 0) {
        channel ??= channelFor(event.sessionId);
        channel.log ??= new ChunkLog(replayLogSize);
        channel.log.append(event);
      }
      channel?.emitter.emit(event.type, event as never);
      if (everythingListeners > 0) everything.emit(event.type, event as never);
    },

    subscribe(sessionId, listener) {
      const channel = channelFor(sessionId);
      const handler = guarded(listener);
      channel.emitter.on('*', handler);
      channel.listeners += 1;
      let subscribed = true;
      return () => {
        if (!subscribed) return;
        subscribed = false;
        channel.emitter.off('*', handler);
        channel.listeners -= 1;
        release(sessionId, channel);
      };
    },

    subscribeAll(listener) {
      const handler = guarded(listener);
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
      return channels.get(sessionId)?.log?.after(afterSeq) ?? [];
    },

    forget(sessionId) {
      const channel = channels.get(sessionId);
      if (!channel) return;
      channel.log = undefined;
      release(sessionId, channel);
    },

    async close() {
      channels.clear();
      everything.all.clear();
      everythingListeners = 0;
    },
  };
}
