import type { ChatEvent } from '../domain/events.ts';
import type { SessionId } from '../domain/ids.ts';
import type { EventBus, Unsubscribe } from '../domain/ports.ts';

/** Who gets a watched session's events, in order. */
export interface WatchSink {
  deliver(event: ChatEvent): void;
}

/**
 * One watcher's place in the session's stream: live events held back while
 * the replay goes out, and chunks already sent dropped. An object with its
 * state in fields, not closures: one lives per open connection, and memory
 * per idle connection is a target we measure.
 */
class SessionWatch {
  #held: ChatEvent[] | undefined = [];
  #lastSeq: number;
  readonly #sink: WatchSink;

  constructor(sink: WatchSink, afterSeq: number | undefined) {
    this.#sink = sink;
    this.#lastSeq = afterSeq ?? 0;
  }

  /** A live event: held while the replay is out, else forwarded. */
  take(event: ChatEvent): void {
    if (this.#held) this.#held.push(event);
    else this.forward(event);
  }

  forward(event: ChatEvent): void {
    if (event.type === 'chunk') {
      if (event.seq <= this.#lastSeq) return;
      this.#lastSeq = event.seq;
    }
    this.#sink.deliver(event);
  }

  /** The replay is out: what was held goes now, and from here on events go straight through. */
  release(): void {
    const pending = this.#held ?? [];
    this.#held = undefined;
    for (const event of pending) this.forward(event);
  }
}

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
  sink: WatchSink,
  onLive?: () => void,
): Promise<Unsubscribe> {
  const watch = new SessionWatch(sink, afterSeq);
  const unsubscribe = bus.subscribe(sessionId, (event) => watch.take(event));
  try {
    await bus.ready?.(sessionId);
    onLive?.();
    if (afterSeq !== undefined) {
      for (const chunk of await bus.replay(sessionId, afterSeq)) watch.forward(chunk);
    }
  } catch (error) {
    unsubscribe();
    throw error;
  }
  watch.release();
  return unsubscribe;
}
