import type { ChatEvent } from '../domain/events.ts';
import type { MessageId, SessionId } from '../domain/ids.ts';
import type { Clock } from '../domain/ports.ts';

export type ReplyOutcome = 'complete' | 'cancelled' | 'failed' | 'interrupted';

export interface ReplyTimingsHooks {
  /** Seconds from a message's acceptance to its reply's first chunk, queueing included: what the user waits. */
  firstChunk(seconds: number): void;
  /** Seconds from a reply's start (its turn came) to its end. */
  finished(seconds: number, outcome: ReplyOutcome): void;
}

interface Current {
  readonly messageId: MessageId;
  readonly acceptedAt: number;
  readonly startedAt: number;
  sawChunk: boolean;
}

interface SessionTimes {
  current: Current | undefined;
  queue: { messageId: MessageId; acceptedAt: number }[];
}

const OUTCOMES: Partial<Record<ChatEvent['type'], ReplyOutcome>> = {
  'message.completed': 'complete',
  'message.cancelled': 'cancelled',
  'message.failed': 'failed',
  'message.interrupted': 'interrupted',
};

/**
 * Derives reply timings from the domain events alone: a session answers one
 * message at a time in acceptance order, so the next reply starts when the one
 * before it ends. Only sessions with work in flight are remembered.
 */
export function createReplyTimings(clock: Clock, hooks: ReplyTimingsHooks): { observe(event: ChatEvent): void } {
  const sessions = new Map<SessionId, SessionTimes>();

  const startNext = (sessionId: SessionId, times: SessionTimes, now: number) => {
    const next = times.queue.shift();
    times.current = next ? { ...next, startedAt: now, sawChunk: false } : undefined;
    if (!times.current) sessions.delete(sessionId);
  };

  return {
    observe(event) {
      // Chunks are the hot path: most of them only need a Map lookup.
      if (event.type === 'chunk') {
        const current = sessions.get(event.sessionId)?.current;
        if (current?.messageId !== event.messageId || current.sawChunk) return;
        current.sawChunk = true;
        hooks.firstChunk((clock.now() - current.acceptedAt) / 1000);
        return;
      }
      const now = clock.now();
      if (event.type === 'session.stopped') {
        sessions.delete(event.sessionId);
        return;
      }
      if (event.type === 'message.accepted') {
        let times = sessions.get(event.sessionId);
        if (!times) {
          times = { current: undefined, queue: [] };
          sessions.set(event.sessionId, times);
        }
        if (times.current) times.queue.push({ messageId: event.messageId, acceptedAt: now });
        else times.current = { messageId: event.messageId, acceptedAt: now, startedAt: now, sawChunk: false };
        return;
      }
      const outcome = OUTCOMES[event.type];
      if (!outcome || !('messageId' in event)) return;
      const times = sessions.get(event.sessionId);
      if (!times) return;
      if (times.current?.messageId === event.messageId) {
        hooks.finished((now - times.current.startedAt) / 1000, outcome);
        // A cancel (or a shutdown) drops the queue with the reply; after a
        // completion or a failure the next queued message takes its turn.
        if (outcome === 'cancelled' || outcome === 'interrupted') sessions.delete(event.sessionId);
        else startNext(event.sessionId, times, now);
      } else {
        times.queue = times.queue.filter((queued) => queued.messageId !== event.messageId);
      }
    },
  };
}
