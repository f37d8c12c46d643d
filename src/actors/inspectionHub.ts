import type { Subscription } from 'xstate';
import type { ChatEvent } from '../domain/events.ts';
import type { SessionId } from '../domain/ids.ts';
import type { Clock, EventBus, Unsubscribe } from '../domain/ports.ts';
import { describeSession, toInspectionRecord } from './sessionInsight.ts';
import type { InspectionRecord, SessionOverview } from './sessionInsight.ts';
import type { LiveSession } from './liveSession.ts';
import type { SessionRegistry } from './sessionRegistry.ts';

/** What a watcher of one session receives, in order. */
export type WatchRecord =
  | ({ at: number; source: 'xstate' } & InspectionRecord)
  | { at: number; source: 'domain'; event: ChatEvent['type']; messageId?: string; seq?: number; text?: string; chars?: number; detail?: string }
  | { at: number; source: 'state'; overview: SessionOverview | null };

export interface InspectionHubOptions {
  registry: SessionRegistry;
  bus: EventBus;
  clock: Clock;
  /** Hide message text (`--inspect-redact`): only its length is shown. */
  redact?: boolean;
  /** Told when building or sending a record failed (logged by the server). */
  onObserverError?: (error: unknown) => void;
}

export interface InspectionHub {
  /**
   * Streams one session's machine events and domain events to `listener`.
   * The first watcher of a session attaches an XState inspection observer to
   * the sessions' actor system (shared by every session: the observer keeps
   * this session's actors' events only); the last one to leave detaches it.
   */
  watch(sessionId: SessionId, listener: (record: WatchRecord) => void): Unsubscribe;
  /** Sessions that have an inspection observer attached now (zero when nobody watches). */
  readonly attachedCount: number;
  close(): void;
}

interface Watched {
  listeners: Set<(record: WatchRecord) => void>;
  actor: LiveSession['actor'] | undefined;
  inspection: Subscription | undefined;
  unsubscribeBus: Unsubscribe;
}

/**
 * Inspection that costs nothing while nobody looks: an idle observer on every
 * actor costs about a quarter of the throughput, so observers are attached
 * only to the sessions somebody is watching, and only while they are.
 */
export function createInspectionHub(options: InspectionHubOptions): InspectionHub {
  const { registry, bus, clock } = options;
  const redact = options.redact ?? false;
  const onObserverError = options.onObserverError ?? (() => {});
  const watched = new Map<SessionId, Watched>();

  const emit = (entry: Watched, record: WatchRecord) => {
    for (const listener of entry.listeners) listener(record);
  };

  const domainRecord = (event: ChatEvent): WatchRecord => {
    const at = clock.now();
    const base = { at, source: 'domain' as const, event: event.type };
    const text = (value: string) => (redact ? { chars: value.length } : { text: value });
    switch (event.type) {
      case 'message.accepted':
        return { ...base, messageId: event.messageId, ...text(event.text) };
      case 'chunk':
        return { ...base, messageId: event.messageId, seq: event.seq, ...text(event.chunk) };
      case 'message.failed':
        return { ...base, messageId: event.messageId, detail: event.code };
      case 'session.stopped':
        return { ...base, detail: event.reason };
      case 'session.restarted':
        return { ...base, detail: `restarts: ${event.restarts}` };
      case 'session.started':
        return { ...base, detail: event.resumed ? 'resumed' : 'new' };
      default:
        return { ...base, messageId: event.messageId };
    }
  };

  const detachActor = (entry: Watched) => {
    entry.inspection?.unsubscribe();
    entry.inspection = undefined;
    entry.actor = undefined;
  };

  // (Re)attaches to the session's current actor: a passivated session comes
  // back with a new one.
  const attachActor = (sessionId: SessionId, entry: Watched) => {
    const live = registry.peek(sessionId);
    if (live?.actor === entry.actor) return;
    detachActor(entry);
    if (!live) return;
    const root = live.actor;
    entry.actor = root;
    entry.inspection = root.system.inspect((event) => {
      // Runs inside the session's own transitions: whatever goes wrong here
      // must cost the watcher a record, never the session its actor.
      try {
        const record = toInspectionRecord(event, root);
        if (record) emit(entry, { at: clock.now(), source: 'xstate', ...record });
      } catch (error) {
        onObserverError(error);
      }
    });
  };

  const currentState = (sessionId: SessionId): WatchRecord => {
    const live = registry.peek(sessionId);
    return { at: clock.now(), source: 'state', overview: live ? describeSession(live) : null };
  };

  return {
    watch(sessionId, listener) {
      let entry = watched.get(sessionId);
      if (!entry) {
        const created: Watched = { listeners: new Set(), actor: undefined, inspection: undefined, unsubscribeBus: () => {} };
        created.unsubscribeBus = bus.subscribe(sessionId, (event) => {
          if (event.type === 'session.started') attachActor(sessionId, created);
          emit(created, domainRecord(event));
          if (event.type === 'session.stopped') detachActor(created);
          if (event.type !== 'chunk') emit(created, currentState(sessionId));
        });
        entry = created;
        watched.set(sessionId, entry);
        attachActor(sessionId, entry);
      }
      entry.listeners.add(listener);
      listener(currentState(sessionId));
      const owner = entry;
      let subscribed = true;
      return () => {
        if (!subscribed) return;
        subscribed = false;
        owner.listeners.delete(listener);
        if (owner.listeners.size > 0) return;
        owner.unsubscribeBus();
        detachActor(owner);
        watched.delete(sessionId);
      };
    },

    get attachedCount() {
      let count = 0;
      for (const entry of watched.values()) if (entry.inspection) count += 1;
      return count;
    },

    close() {
      for (const entry of watched.values()) {
        entry.unsubscribeBus();
        detachActor(entry);
        entry.listeners.clear();
      }
      watched.clear();
    },
  };
}
