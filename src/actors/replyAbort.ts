import type { AbortListener, CancelSignal } from '../domain/ports.ts';

/**
 * What aborts one reply: the session actor's cancel and stop, a head start
 * abandoned. It is its own signal (`aborted`, `abort` listeners), without
 * Node's AbortController: that one is an EventTarget (its signal made on
 * first read, a listener record per listener, a DOMException per abort),
 * ~5–8 µs per reply in a micro-benchmark and ~2% of the main thread's
 * profile of the 5,000-session burst (createAbortSignal, add/remove,
 * isEventTarget), and ~0.9 KB of the ~7.9 KB a streaming reply keeps alive
 * (bench/liveAllocations.ts), which every scavenge copies.
 *
 * As an AbortSignal: a listener added twice is called once, one added after
 * the abort is never called, and a listener that throws does not keep the
 * others from being called. Unlike one, `abort` then throws the first error
 * to its caller (EventTarget would report it as uncaught); none of this
 * server's listeners throw (they resolve a wait or destroy a request).
 */
export class ReplyAbort implements CancelSignal {
  #aborted = false;
  // Most replies have one listener (their stream's) or none.
  #listeners: AbortListener[] | undefined;

  get aborted(): boolean {
    return this.#aborted;
  }

  // Every listener is called at most once (the abort happens once): `once` changes nothing.
  addEventListener(_type: 'abort', listener: AbortListener, _options?: { once?: boolean }): void {
    if (this.#aborted) return;
    const listeners = (this.#listeners ??= []);
    if (!listeners.includes(listener)) listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: AbortListener): void {
    const listeners = this.#listeners;
    if (!listeners) return;
    const at = listeners.indexOf(listener);
    if (at !== -1) listeners.splice(at, 1);
  }

  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (!listeners) return;
    let failure: { error: unknown } | undefined;
    for (const listener of listeners) {
      try {
        if (typeof listener === 'function') listener();
        else listener.handleEvent();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  }
}
