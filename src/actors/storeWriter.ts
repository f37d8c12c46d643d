import type { Conversation } from '../domain/conversation.ts';
import { ChatError, isChatError } from '../domain/errors.ts';
import type { ChunkEvent } from '../domain/events.ts';
import type { SessionId } from '../domain/ids.ts';
import type { Message } from '../domain/message.ts';
import type { Clock, Logger, SessionStore } from '../domain/ports.ts';
import { createSharedWakeups } from '../infra/sharedWakeups.ts';
import { PendingWrite } from './pendingWrite.ts';

export interface StoreWriterOptions {
  store: SessionStore;
  clock: Clock;
  logger: Logger;
  /** How often the text of a streaming reply is written (default 500 ms). */
  flushIntervalMs?: number;
  /**
   * Write a streaming reply before it ends (default true). Off for a store
   * that dies with the process anyway (`durable: false`): there is no crash
   * to protect against, and the flushes were a measured share of the CPU per
   * reply.
   */
  flushStreaming?: boolean;
  /**
   * Lifecycle changes (a reply started or finished) wait this long for others
   * of the session (default 10 ms): a short reply's start and end then go as
   * one write, and often with the next message's commit, instead of each
   * holding the session's one write in flight.
   */
  lifecycleDelayMs?: number;
  /** First delay before retrying a failed background write; doubles up to `retryMaxMs` (defaults 100 ms, 5 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Chunks held for the store's resume log per session while it cannot be written (default 1,000). */
  maxPendingChunks?: number;
  /** False for a session that is never written (an ephemeral one); default: every session is. */
  stored?: (sessionId: SessionId) => boolean;
}

/**
 * Writes conversations to the store, one write per session in flight (so
 * writes never overtake), every session's writes group-committed by the
 * store:
 * - `commit` is awaited: a user message is acknowledged once its write is
 *   committed; a failed write is not retried, it rejects and nothing of the
 *   message is kept (the caller drops it);
 * - `save` is background (lifecycle changes: a reply started, cancelled; a
 *   reply's end goes through `finish`, which may wait a flush interval): a
 *   failure is kept and retried with backoff, so nothing is dropped while the
 *   process lives; a write the store refuses for its content is dropped and
 *   logged, never retried forever (it would wedge every batch it joins);
 * - while a reply streams, its text and chunks go at most every
 *   `flushIntervalMs` (what a crash can lose), with the session's chunk-number
 *   mark; `reserveSeqs` stores the mark now when a reply is about to pass it.
 * A session costs nothing here unless it has something unwritten.
 */
export interface StoreWriter {
  /** Queues the latest versions of these messages and the session's counters (retried until stored). */
  save(conversation: Conversation, messages: readonly Message[]): void;
  /**
   * Queues a reply's end like `save`, but it waits for the session's next
   * write, at most `flushIntervalMs` (a flush already planned stands): a
   * crash before it loses what a crash mid-reply loses (the reply comes back
   * `interrupted` with its text up to the last flush), and a reply's end then
   * mostly rides on a flush or the next message's commit instead of a write
   * of its own (saturate bench: 2.9 → 2.0 session writes per reply).
   */
  finish(conversation: Conversation, messages: readonly Message[]): void;
  /** Writes these messages now; resolves once committed, rejects (and drops them) when the write fails. */
  commit(conversation: Conversation, messages: readonly Message[]): Promise<void>;
  /** Stores the conversation's chunk-number mark now; resolves once committed. */
  reserveSeqs(conversation: Conversation): Promise<void>;
  /** Notes a streamed chunk; the reply in progress is flushed on the interval. */
  chunk(conversation: Conversation, chunk: ChunkEvent): void;
  /** True while something of this session is not yet stored (it must not be passivated). */
  pending(sessionId: SessionId): boolean;
  /** Drops what is pending for a deleted session (awaited writes reject with `session_not_found`). */
  forget(sessionId: SessionId): void;
  /** Writes everything pending now; waits at most `timeoutMs`. Resolves with the sessions left unwritten. */
  close(timeoutMs?: number): Promise<number>;
}

const codeOf = (error: unknown) => (isChatError(error) ? error.code : 'store_unavailable');

export function createStoreWriter(options: StoreWriterOptions): StoreWriter {
  const { store, clock, logger } = options;
  const flushIntervalMs = options.flushIntervalMs ?? 500;
  const flushStreaming = options.flushStreaming ?? true;
  const retryBaseMs = options.retryBaseMs ?? 100;
  const retryMaxMs = options.retryMaxMs ?? 5000;
  const maxPendingChunks = options.maxPendingChunks ?? 1000;
  const stored = options.stored ?? (() => true);
  const lifecycleDelayMs = options.lifecycleDelayMs ?? 10;
  const states = new Map<SessionId, PendingWrite>();
  const wakeups = createSharedWakeups(clock);
  let closing = false;
  let onIdle: (() => void) | undefined;

  const stateOf = (conversation: Conversation): PendingWrite => {
    let state = states.get(conversation.sessionId);
    if (!state) {
      state = new PendingWrite(conversation);
      states.set(conversation.sessionId, state);
    }
    // A re-activated session has a new Conversation; what the old one left still gets written.
    state.conversation = conversation;
    return state;
  };

  const current = (state: PendingWrite) => states.get(state.conversation.sessionId) === state;

  const drop = (sessionId: SessionId) => {
    states.delete(sessionId);
    if (states.size === 0) onIdle?.();
  };

  const release = (state: PendingWrite) => {
    if (!state.settled) return;
    if (current(state)) drop(state.conversation.sessionId);
    else if (states.size === 0) onIdle?.();
  };

  const clearTimers = (state: PendingWrite) => {
    state.flushTimer?.cancel();
    if (state.retryTimer !== undefined) clock.clearTimeout(state.retryTimer);
    state.flushTimer = state.retryTimer = undefined;
  };

  /** A write within `delayMs` (an earlier one already planned stands); none while one is in flight or retrying. */
  const scheduleFlush = (state: PendingWrite, delayMs = flushIntervalMs) => {
    if (state.inFlight || state.retryTimer !== undefined) return;
    const due = clock.now() + (closing ? 0 : delayMs);
    if (state.flushTimer !== undefined) {
      if (state.flushAt <= due) return;
      state.flushTimer.cancel();
    }
    state.flushAt = due;
    // Sessions due in the same millisecond share one timer (streams started by one group commit flush together).
    state.flushTimer = wakeups.after(due - clock.now(), () => {
      state.flushTimer = undefined;
      write(state);
    });
  };

  const write = (state: PendingWrite): void => {
    if (state.inFlight) return;
    // Someone waits on this write: a background retry's backoff does not hold it back.
    if (state.retryTimer !== undefined && state.waiters.length === 0) return;
    clearTimers(state);
    const taken = state.take();
    if (!taken) {
      release(state);
      return;
    }
    const { update, waiters, awaited } = taken;
    const { conversation } = state;
    state.inFlight = true;
    store.save(update).then(
      () => {
        state.inFlight = false;
        state.failures = 0;
        conversation.confirmSeqReserved(update.seqReserved);
        for (const waiter of waiters) waiter.resolve();
        if (!current(state)) return;
        if (state.waiters.length > 0) write(state);
        else if (state.touched || state.messages.length > 0 || state.withdrawn.length > 0) scheduleFlush(state, lifecycleDelayMs);
        else if (state.chunks.length > 0) scheduleFlush(state);
        else release(state);
      },
      (error: unknown) => {
        state.inFlight = false;
        const code = codeOf(error);
        const sessionId = conversation.sessionId;
        // Whoever waits learns now; their messages are not written later behind their back.
        state.rejectWaiters(waiters, error);
        if (!current(state)) return;
        if (code === 'session_not_found') {
          // Deleted meanwhile: nothing of it is to be kept, nor anyone to wait.
          state.rejectWaiters(state.waiters, error);
          clearTimers(state);
          drop(sessionId);
          return;
        }
        if (code === 'store_rejected' && awaited.size === 0) {
          // The store will never take this content; retrying it would fail every batch it joins.
          logger.error(
            { sessionId, messages: update.messages.map((message) => message.id), err: String((error as { cause?: unknown }).cause ?? error) },
            'store refused a write for its content; those changes are not kept',
          );
          state.dropRefused(taken);
          if (state.unwritten) write(state);
          else release(state);
          return;
        }
        const outage = code !== 'store_rejected';
        // An outage: whoever waits behind this write learns now too, rather than after the backoff.
        if (outage) state.rejectWaiters(state.waiters.splice(0), error);
        state.putBack(taken, outage, maxPendingChunks);
        if (!outage) {
          // The awaited messages took the blame; what was written behind them goes again at once.
          write(state);
          return;
        }
        state.failures += 1;
        const delay = Math.min(retryBaseMs * 2 ** (state.failures - 1), retryMaxMs);
        logger.warn(
          { sessionId, failures: state.failures, retryInMs: delay, err: String((error as { cause?: unknown }).cause ?? error) },
          'store write failed; will retry',
        );
        state.retryTimer = clock.setTimeout(() => {
          state.retryTimer = undefined;
          write(state);
        }, delay);
      },
    );
  };

  const queue = (conversation: Conversation, messages: readonly Message[], delayMs: number): void => {
    if (!stored(conversation.sessionId)) return;
    const state = stateOf(conversation);
    state.queue(messages);
    scheduleFlush(state, delayMs);
  };

  const awaitWrite = (conversation: Conversation, messages: readonly Message[]): Promise<void> => {
    // A session that is never stored has nothing to wait for.
    if (!stored(conversation.sessionId)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const state = stateOf(conversation);
      state.queue(messages);
      state.waiters.push({ ids: messages.map((message) => message.id), resolve, reject });
      write(state);
    });
  };

  return {
    save(conversation, messages) {
      queue(conversation, messages, lifecycleDelayMs);
    },

    finish(conversation, messages) {
      queue(conversation, messages, flushIntervalMs);
    },

    commit: awaitWrite,

    reserveSeqs: (conversation) => awaitWrite(conversation, []),

    chunk(conversation, chunk) {
      if (!flushStreaming || !stored(conversation.sessionId)) return;
      const state = stateOf(conversation);
      state.chunks.push(chunk);
      if (state.chunks.length > maxPendingChunks) state.chunks.shift();
      scheduleFlush(state);
    },

    pending(sessionId) {
      return states.has(sessionId);
    },

    forget(sessionId) {
      const state = states.get(sessionId);
      if (!state) return;
      clearTimers(state);
      state.rejectWaiters(state.waiters.splice(0), new ChatError('session_not_found'));
      drop(sessionId);
    },

    async close(timeoutMs = 5000) {
      closing = true;
      for (const state of [...states.values()]) {
        if (state.retryTimer !== undefined) {
          clock.clearTimeout(state.retryTimer);
          state.retryTimer = undefined;
        }
        write(state);
      }
      if (states.size === 0) return 0;
      await new Promise<void>((resolve) => {
        const deadline = clock.setTimeout(resolve, timeoutMs);
        onIdle = () => {
          clock.clearTimeout(deadline);
          resolve();
        };
      });
      onIdle = undefined;
      const left = states.size;
      for (const sessionId of [...states.keys()]) this.forget(sessionId);
      return left;
    },
  };
}
