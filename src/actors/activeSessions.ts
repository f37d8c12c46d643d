import { ChatError } from '../domain/errors.ts';
import type { SessionId } from '../domain/ids.ts';
import type { Clock, EventBus, Logger } from '../domain/ports.ts';
import type { LiveSession } from './liveSession.ts';

export interface ActiveEntry {
  readonly session: LiveSession;
  lastUsedAt: number;
}

export interface ActiveSessionsOptions {
  bus: EventBus;
  clock: Clock;
  logger: Logger;
  /** Stops a session's supervisor without ending the session (its parent does it: sessionsRoot.ts). */
  passivate: (supervisor: LiveSession['actor']) => void;
  /** Most active sessions on this node (default unlimited). */
  maxSessions?: number;
  /** Told how many idle actors were passivated (metrics). */
  onPassivated?: (count: number) => void;
  /** Told whenever a session leaves (stopped, passivated, deleted): many nodes let its lease go. */
  onDropped?: (sessionId: SessionId) => void;
}

/**
 * The sessions active on this node, with a count per owner kept alongside
 * (so a per-key live limit costs no scan), and the rules for making room:
 * passivating idle sessions, least recently used first, before anyone is
 * refused.
 */
export interface ActiveSessions {
  get(sessionId: SessionId): ActiveEntry | undefined;
  add(sessionId: SessionId, session: LiveSession): void;
  /** Forgets the entry if it is still this session's; true when it was. */
  drop(sessionId: SessionId, session: LiveSession): boolean;
  /** Stops the actor and forgets it; its history stays in the store. */
  passivate(sessionId: SessionId, entry: ActiveEntry): void;
  /** Passivates idle sessions last used at or before `cutoff` (busy ones are stamped instead); returns how many. */
  passivateUnusedSince(cutoff: number): number;
  /**
   * Makes room for one more active session of `owner` (throws when there is
   * none): past `ownerLimit` the owner's least recently used idle session is
   * passivated, and a new session (not `existing`) is refused `rate_limited`
   * when none is idle; at `maxSessions` a batch of the node's least recently
   * used idle sessions is passivated, `overloaded` only when none is idle.
   */
  makeRoom(owner: string | undefined, ownerLimit: number, existing: boolean): void;
  countOf(owner: string): number;
  readonly size: number;
  entries(): IterableIterator<[SessionId, ActiveEntry]>;
  sessions(): IterableIterator<LiveSession>;
}

export function createActiveSessions(options: ActiveSessionsOptions): ActiveSessions {
  const { bus, clock, logger } = options;
  const maxSessions = options.maxSessions ?? Number.POSITIVE_INFINITY;
  const entries = new Map<SessionId, ActiveEntry>();
  const byOwner = new Map<string, number>();
  // At the cap, 1% of it is passivated at once: one scan per batch of new sessions, not per new session.
  const roomBatch = Number.isFinite(maxSessions) ? Math.max(1, Math.ceil(maxSessions / 100)) : 1;

  const count = (owner: string | undefined, delta: number) => {
    if (owner === undefined) return;
    const next = (byOwner.get(owner) ?? 0) + delta;
    if (next > 0) byOwner.set(owner, next);
    else byOwner.delete(owner);
  };

  const drop = (sessionId: SessionId, session: LiveSession) => {
    if (entries.get(sessionId)?.session !== session) return false;
    entries.delete(sessionId);
    count(session.owner, -1);
    options.onDropped?.(sessionId);
    return true;
  };

  const passivate = (sessionId: SessionId, entry: ActiveEntry) => {
    // The store is current at every lifecycle point, so nothing is written here.
    drop(sessionId, entry.session);
    options.passivate(entry.session.actor);
    bus.forget(sessionId);
  };

  const reportPassivated = (passivated: number, why: string) => {
    if (passivated === 0) return;
    logger.debug({ passivated, active: entries.size }, why);
    options.onPassivated?.(passivated);
  };

  const passivateLeastRecent = (limit: number, owner?: string) => {
    const idle: [SessionId, ActiveEntry][] = [];
    for (const item of entries) {
      if ((owner === undefined || item[1].session.owner === owner) && !item[1].session.busy) idle.push(item);
    }
    idle.sort((a, b) => a[1].lastUsedAt - b[1].lastUsedAt);
    const chosen = idle.slice(0, limit);
    for (const [sessionId, entry] of chosen) passivate(sessionId, entry);
    reportPassivated(chosen.length, 'passivated idle sessions to make room');
  };

  return {
    get: (sessionId) => entries.get(sessionId),
    add(sessionId, session) {
      entries.set(sessionId, { session, lastUsedAt: clock.now() });
      count(session.owner, 1);
    },
    drop,
    passivate,

    passivateUnusedSince(cutoff) {
      const stale: [SessionId, ActiveEntry][] = [];
      for (const item of entries) if (item[1].lastUsedAt <= cutoff) stale.push(item);
      let passivated = 0;
      for (const [sessionId, entry] of stale) {
        if (entry.session.busy) {
          entry.lastUsedAt = clock.now();
          continue;
        }
        passivate(sessionId, entry);
        passivated += 1;
      }
      reportPassivated(passivated, 'passivated idle sessions');
      return passivated;
    },

    makeRoom(owner, ownerLimit, existing) {
      if (owner !== undefined && ownerLimit > 0 && (byOwner.get(owner) ?? 0) >= ownerLimit) {
        passivateLeastRecent(1, owner);
        // An owner always gets its own session back; only new ones wait for room.
        if (!existing && (byOwner.get(owner) ?? 0) >= ownerLimit) {
          throw new ChatError('rate_limited', 'This key has as many live sessions as it may; let a reply finish and try again.', {
            retryAfterMs: 1000,
          });
        }
      }
      if (entries.size >= maxSessions) {
        passivateLeastRecent(roomBatch);
        if (entries.size >= maxSessions) throw new ChatError('overloaded');
      }
    },

    countOf: (owner) => byOwner.get(owner) ?? 0,
    get size() {
      return entries.size;
    },
    entries: () => entries.entries(),
    *sessions() {
      for (const entry of entries.values()) yield entry.session;
    },
  };
}
