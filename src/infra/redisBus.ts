import type { Redis } from 'ioredis';
import { ChatError } from '../domain/errors.ts';
import type { ChatEvent, ChatEventMap, ChunkEvent } from '../domain/events.ts';
import type { SessionId } from '../domain/ids.ts';
import type { EventBus, Logger } from '../domain/ports.ts';
import { ChunkLog } from './chunkLog.ts';
import { redisKeys } from './redisKeys.ts';
import { withScripts } from './redisScripts.ts';
import { createEmitter } from './typedMitt.ts';

export interface RedisBusOptions {
  /** For publishing and reading streams (auto-pipelined). */
  commands: Redis;
  /** A connection of its own: in subscriber mode it runs no other command. */
  subscriber: Redis;
  /** This node: its own events coming back from Redis are not delivered twice. */
  nodeId: string;
  logger: Logger;
  /** The lease value (`node token`) this node holds for the session, if it owns it. */
  holderOf(sessionId: SessionId): string | undefined;
  /** Chunks kept per session, in Redis and for the owner's own watchers (default 1,000). */
  replayLogSize?: number;
  /** …and at most this many bytes of chunk text in this node's copy (default 1 MiB; the newest chunk always kept). Redis's stream is capped by count. */
  replayLogBytes?: number;
  /** A session's stream expires this long after its last chunk (default 10 minutes). */
  logTtlMs?: number;
  onListenerError?: (error: unknown, event: ChatEvent) => void;
  /** Told of every Redis command the bus issues (`publish`, `subscribe`, `replay`), for the command count per chunk. */
  onCommand?: (kind: 'publish' | 'subscribe' | 'replay') => void;
  /** Told when a publish failed (Redis unreachable): cross-node watchers miss the event. */
  onPublishFailed?: (error: unknown) => void;
}

export interface RedisBus extends EventBus {
  /**
   * The session is no longer owned here (passivated, moved, released): its
   * local watchers from now on need the events of the next owner. Resolves
   * once subscribed, so the lease is released only after.
   */
  disowned(sessionId: SessionId): Promise<void>;
  /** True while the subscriber connection is up. */
  readonly connected: boolean;
}

interface Channel {
  listeners: number;
  /** Subscribed in Redis (or being). */
  remote: Promise<void> | undefined;
}

/**
 * The event bus across nodes, on Redis. Events are delivered to this node's
 * watchers at once (as the in-process bus does) and published with one
 * script call each (a chunk also goes into the session's capped stream for
 * resume). A node subscribes to a session's shard channel only while it has
 * watchers of it and does not own it: an owner's watchers are served
 * locally, so the common case (the client on the node that runs its
 * session) costs no subscription and no echo. Node-wide listeners (metrics,
 * inspection, draining) see this node's own events only: each event is
 * counted once, on the node that produced it.
 */
export function createRedisBus(options: RedisBusOptions): RedisBus {
  const { subscriber, nodeId, logger, holderOf } = options;
  const commands = withScripts(options.commands);
  const replayLogSize = options.replayLogSize ?? 1000;
  const replayLogBytes = options.replayLogBytes ?? 1024 * 1024;
  const logTtlMs = options.logTtlMs ?? 600_000;
  const onListenerError = options.onListenerError ?? (() => {});
  const onCommand = options.onCommand ?? (() => {});
  const bySession = createEmitter<Record<SessionId, ChatEvent>>();
  const everything = createEmitter<ChatEventMap>();
  const logs = new Map<SessionId, ChunkLog>();
  const channels = new Map<SessionId, Channel>();
  let everythingListeners = 0;
  let closed = false;
  let lostNoticeSent = false;

  const guarded = (listener: (event: ChatEvent) => void) => (event: ChatEvent) => {
    try {
      listener(event);
    } catch (error) {
      onListenerError(error, event);
    }
  };

  const subscribeRemote = (sessionId: SessionId, channel: Channel): Promise<void> => {
    onCommand('subscribe');
    const subscribing = subscriber.ssubscribe(redisKeys.events(sessionId)).then(
      () => undefined,
      (error: unknown) => {
        // Not subscribed: the next attempt (a new watcher, or the reconnection) tries again.
        if (channel.remote === subscribing) channel.remote = undefined;
        throw new ChatError('unavailable', undefined, { cause: error });
      },
    );
    channel.remote = subscribing;
    subscribing.catch(() => {});
    return subscribing;
  };

  const unsubscribeRemote = (sessionId: SessionId) => {
    if (subscriber.status !== 'ready') return;
    onCommand('subscribe');
    subscriber.sunsubscribe(redisKeys.events(sessionId)).catch(() => {});
  };

  const onMessage = (_channel: string, message: string) => {
    const separator = message.indexOf('|');
    if (separator < 0 || message.slice(0, separator) === nodeId) return;
    let event: ChatEvent;
    try {
      event = JSON.parse(message.slice(separator + 1)) as ChatEvent;
    } catch {
      return;
    }
    // A node shutting down stops its sessions; they live on elsewhere, so watchers here stay attached.
    if (event.type === 'session.stopped' && event.reason === 'shutdown') return;
    bySession.emit(event.sessionId, event);
  };
  subscriber.on('smessage', onMessage);

  // Watchers of sessions owned elsewhere are cut off while the subscriber is
  // down: they are told (`stopped`, reason `unavailable`: reconnect and
  // resume) rather than left waiting for events that will not come.
  const onClose = () => {
    if (closed || lostNoticeSent) return;
    lostNoticeSent = true;
    for (const [sessionId, channel] of [...channels]) {
      if (channel.remote === undefined && holderOf(sessionId) !== undefined) continue;
      channel.remote = undefined;
      bySession.emit(sessionId, { type: 'session.stopped', sessionId, reason: 'unavailable' });
    }
  };
  const onReady = () => {
    lostNoticeSent = false;
    for (const [sessionId, channel] of channels) {
      if (channel.listeners > 0 && channel.remote === undefined && holderOf(sessionId) === undefined) subscribeRemote(sessionId, channel);
    }
  };
  subscriber.on('close', onClose);
  subscriber.on('ready', onReady);

  const bus: RedisBus = {
    publish(event) {
      if (event.type === 'chunk' && replayLogSize > 0 && replayLogBytes > 0) {
        let log = logs.get(event.sessionId);
        if (!log) {
          log = new ChunkLog(replayLogSize, replayLogBytes);
          logs.set(event.sessionId, log);
        }
        log.append(event);
      }
      bySession.emit(event.sessionId, event);
      if (everythingListeners > 0) everything.emit(event.type, event as never);
      const holder = holderOf(event.sessionId);
      // Only the lease holder speaks for a session beyond this node.
      if (holder === undefined || closed) return;
      // A session just created has no watcher on another node: its id is new (random) and reaches
      // the client only in the answer to the request creating it, so nobody can be subscribed to its
      // channel yet. Not sent: one of the two Redis scripts a new WebSocket session cost.
      if (event.type === 'session.started' && !event.resumed) return;
      onCommand('publish');
      commands
        .publishEvent(
          redisKeys.lease(event.sessionId),
          redisKeys.log(event.sessionId),
          holder,
          redisKeys.events(event.sessionId),
          nodeId,
          JSON.stringify(event),
          event.type === 'chunk' ? event.seq : 0,
          replayLogSize,
          logTtlMs,
        )
        .then(
          (receivers) => {
            if (receivers === -1) logger.debug({ event: event.type }, 'event not published: the lease is no longer ours');
          },
          (error: unknown) => options.onPublishFailed?.(error),
        );
    },

    subscribe(sessionId, listener) {
      const handler = guarded(listener);
      bySession.on(sessionId, handler);
      let channel = channels.get(sessionId);
      if (!channel) {
        channel = { listeners: 0, remote: undefined };
        channels.set(sessionId, channel);
      }
      channel.listeners += 1;
      if (channel.remote === undefined && holderOf(sessionId) === undefined && !closed) subscribeRemote(sessionId, channel);
      let subscribed = true;
      const own = channel;
      return () => {
        if (!subscribed) return;
        subscribed = false;
        bySession.off(sessionId, handler);
        if (bySession.all.get(sessionId)?.length === 0) bySession.all.delete(sessionId);
        own.listeners -= 1;
        if (own.listeners > 0 || channels.get(sessionId) !== own) return;
        channels.delete(sessionId);
        // Commands on one connection run in order: a later SSUBSCRIBE of the same channel comes after this.
        if (own.remote !== undefined) unsubscribeRemote(sessionId);
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

    async ready(sessionId) {
      const channel = channels.get(sessionId);
      if (!channel || holderOf(sessionId) !== undefined) return;
      if (channel.remote === undefined) {
        if (subscriber.status !== 'ready') throw new ChatError('unavailable');
        subscribeRemote(sessionId, channel);
      }
      await channel.remote;
    },

    async disowned(sessionId) {
      const channel = channels.get(sessionId);
      if (!channel || channel.listeners === 0 || channel.remote !== undefined || closed) return;
      await subscribeRemote(sessionId, channel).catch(() => {});
    },

    async replay(sessionId, afterSeq) {
      const local = logs.get(sessionId)?.after(afterSeq) ?? [];
      if (local.length > 0 && local[0]!.seq <= afterSeq + 1) return local;
      let entries: [string, string[]][];
      try {
        onCommand('replay');
        entries = (await commands.xrange(redisKeys.log(sessionId), `${afterSeq + 1}-0`, '+')) as [string, string[]][];
      } catch (error) {
        // The store fills what it can (storedReplayBus); live delivery goes on.
        logger.warn({ err: String(error) }, 'redis stream unavailable for resume');
        return local;
      }
      const firstLocal = local[0]?.seq ?? Number.POSITIVE_INFINITY;
      const remote: ChunkEvent[] = [];
      for (const [, fields] of entries) {
        const json = fields[1];
        if (json === undefined) continue;
        const chunk = JSON.parse(json) as ChunkEvent;
        if (chunk.seq > afterSeq && chunk.seq < firstLocal) remote.push(chunk);
      }
      return [...remote, ...local];
    },

    forget(sessionId) {
      // Only this node's copy: the stream stays for resume elsewhere and expires after idle.
      logs.delete(sessionId);
    },

    get connected() {
      return subscriber.status === 'ready';
    },

    async close() {
      closed = true;
      subscriber.off('smessage', onMessage);
      subscriber.off('close', onClose);
      subscriber.off('ready', onReady);
      bySession.all.clear();
      everything.all.clear();
      logs.clear();
      channels.clear();
      everythingListeners = 0;
    },
  };
  return bus;
}
