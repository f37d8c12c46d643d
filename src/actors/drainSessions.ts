import type { ChatEvent } from '../domain/events.ts';
import type { SessionId } from '../domain/ids.ts';
import type { Clock, EventBus, Logger } from '../domain/ports.ts';
import type { LiveSession } from './liveSession.ts';

/** How a drain ended: sessions that finished their work in time, and those interrupted at the deadline. */
export interface DrainResult {
  finished: number;
  interrupted: number;
}

const ENDS_A_REPLY: ReadonlySet<ChatEvent['type']> = new Set(['message.completed', 'message.cancelled', 'message.failed', 'message.interrupted']);

export interface DrainOptions {
  bus: EventBus;
  clock: Clock;
  logger: Logger;
  deadlineMs: number;
  /** Stops one session for good (reason `shutdown`: a reply still in flight ends `interrupted`). */
  stop: (sessionId: SessionId) => void;
}

/**
 * Lets the given working sessions finish: each is stopped as soon as it has no
 * reply in flight or queued, and at the deadline the rest are stopped.
 * Resolves when none is left.
 */
export function drainSessions(working: Map<SessionId, LiveSession>, options: DrainOptions): Promise<DrainResult> {
  const { bus, clock, logger, deadlineMs, stop } = options;
  if (working.size === 0) return Promise.resolve({ finished: 0, interrupted: 0 });
  if (deadlineMs <= 0) {
    for (const sessionId of working.keys()) stop(sessionId);
    return Promise.resolve({ finished: 0, interrupted: working.size });
  }
  logger.info({ sessions: working.size, deadlineMs }, 'waiting for replies in flight');
  return new Promise<DrainResult>((resolve) => {
    let finished = 0;
    const settle = (interrupted: number) => {
      unsubscribe();
      clock.clearTimeout(timer);
      resolve({ finished, interrupted });
    };
    const unsubscribe = bus.subscribeAll((event) => {
      if (!working.has(event.sessionId) || (!ENDS_A_REPLY.has(event.type) && event.type !== 'session.stopped')) return;
      // The event is published mid-transition; look again once the actor has settled.
      queueMicrotask(() => {
        const session = working.get(event.sessionId);
        if (!session) return;
        const gone = session.actor.getSnapshot().status !== 'active';
        if (!gone && session.working) return;
        working.delete(event.sessionId);
        if (!gone) {
          finished += 1;
          stop(event.sessionId);
        }
        if (working.size === 0) settle(0);
      });
    });
    const timer = clock.setTimeout(() => {
      const interrupted = working.size;
      for (const sessionId of working.keys()) stop(sessionId);
      working.clear();
      settle(interrupted);
    }, deadlineMs);
  });
}
