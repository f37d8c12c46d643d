import type { ChatEvent } from '../domain/events.ts';
import type { SessionId } from '../domain/ids.ts';
import type { EventBus, Unsubscribe } from '../domain/ports.ts';

/**
 * Attaches a watcher to a session: first the chunks after `afterSeq` still in
 * the bus's recent log, then live events, with no gap and no duplicate. It
 * subscribes before it asks for the replay and holds live events back until
 * the replay is out, then drops any chunk already sent. `onLive` runs once
 * the subscription is live (across nodes it is asynchronous), before any
 * event is delivered: where a transport sends its first frame or headers.
 */
export async function watchSession(
  bus: EventBus,
  sessionId: SessionId,
  afterSeq: number | undefined,
  deliver: (event: ChatEvent) => void,
  onLive?: () => void,
): Promise<Unsubscribe> {
  let held: ChatEvent[] | undefined = [];
  let lastSeq = afterSeq ?? 0;
  const forward = (event: ChatEvent) => {
    if (event.type === 'chunk') {
      if (event.seq <= lastSeq) return;
      lastSeq = event.seq;
    }
    deliver(event);
  };
  const unsubscribe = bus.subscribe(sessionId, (event) => {
    if (held) held.push(event);
    else forward(event);
  });
  try {
    await bus.ready?.(sessionId);
    onLive?.();
    if (afterSeq !== undefined) {
      for (const chunk of await bus.replay(sessionId, afterSeq)) forward(chunk);
    }
  } catch (error) {
    unsubscribe();
    throw error;
  }
  const pending = held;
  held = undefined;
  for (const event of pending) forward(event);
  return unsubscribe;
}
