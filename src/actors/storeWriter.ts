import type { Conversation } from '../domain/conversation.ts';
import { ChatError, isChatError } from '../domain/errors.ts';
import type { ChunkEvent } from '../domain/events.ts';
import type { SessionId } from '../domain/ids.ts';
import { copyMessage } from '../domain/message.ts';
import type { Message } from '../domain/message.ts';
import type { Clock, Logger, SessionStore, SessionUpdate } from '../domain/ports.ts';
import { createSharedWakeups } from '../infra/sharedWakeups.ts';
import type { Wakeup } from '../infra/sharedWakeups.ts';

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

interface Waiter {
  /** Messages that are written only for this waiter (dropped if its write fails). */
  ids: readonly string[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface PendingState {
  conversation: Conversation;
  messages: Map<string, Message>;
  chunks: ChunkEvent[];
  waiters: Waiter[];
  /** Messages refused after a failed write that might have committed anyway: removed by a later write. */
  withdrawn: string[];
  /** The session's own fields (stopped, counters) changed. */
  touched: boolean;
  flushTimer: Wakeup | undefined;
  /** When the flush timer fires. */
  flushAt: number;
  retryTimer: unknown;
  inFlight: boolean;
  failures: number;
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
  const states = new Map<SessionId, PendingState>();
  const wakeups = createSharedWakeups(clock);
  let closing = false;
  let onIdle: (() => void) | undefined;

  const stateOf = (conversation: Conversation): PendingState => {
    let state = states.get(conversation.sessionId);
    if (!state) {
      state = {
        conversation,
        messages: new Map(),
        chunks: [],
        waiters: [],
        withdrawn: [],
        touched: false,
        flushTimer: undefined,
        flushAt: 0,
        retryTimer: undefined,
        inFlight: false,
        failures: 0,
      };
      states.set(conversation.sessionId, state);
    }
    // A re-activated session has a new Conversation; what the old one left still gets written.
    state.conversation = conversation;
    return state;
  };

  const current = (state: PendingState) => states.get(state.conversation.sessionId) === state;

  const release = (state: PendingState) => {
    if (state.inFlight || state.flushTimer !== undefined || state.retryTimer !== undefined) return;
    if (state.touched || state.messages.size > 0 || state.chunks.length > 0 || state.waiters.length > 0 || state.withdrawn.length > 0) return;
    if (current(state)) states.delete(state.conversation.sessionId);
    if (states.size === 0) onIdle?.();
  };

  const clearTimers = (state: PendingState) => {
    state.flushTimer?.cancel();
    if (state.retryTimer !== undefined) clock.clearTimeout(state.retryTimer);
    state.flushTimer = state.retryTimer = undefined;
  };

  /** Fails every waiter of the session and drops the messages written only for them. */
  const rejectWaiters = (state: PendingState, waiters: readonly Waiter[], error: unknown) => {
    for (const waiter of waiters) {
      for (const id of waiter.ids) state.messages.delete(id);
      waiter.reject(error);
    }
  };

  /** A write within `delayMs` (an earlier one already planned stands); none while one is in flight or retrying. */
  const scheduleFlush = (state: PendingState, delayMs = flushIntervalMs) => {
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

  const write = (state: PendingState): void => {
    if (state.inFlight) return;
    // Someone waits on this write: a background retry's backoff does not hold it back.
    if (state.retryTimer !== undefined && state.waiters.length === 0) return;
    clearTimers(state);
    const { conversation } = state;
    const messages = state.messages;
    // The reply still streaming goes with every write, with its text so far.
    // (Only the reply is copied: copying its prompt and inputs too on every flush was garbage per chunk.)
    if (state.chunks.length > 0 || conversation.generating) {
      const streaming = conversation.streamingReply();
      if (streaming && (state.chunks.length > 0 || messages.has(streaming.id))) messages.set(streaming.id, streaming);
    }
    if (!state.touched && messages.size === 0 && state.chunks.length === 0 && state.waiters.length === 0 && state.withdrawn.length === 0) {
      release(state);
      return;
    }
    const update: SessionUpdate = {
      sessionId: conversation.sessionId,
      lastSeq: conversation.lastSeq,
      seqReserved: conversation.seqReservation,
      lastActiveAt: conversation.lastActiveAt,
      stopped: conversation.stopped,
      messages: [...messages.values()],
      chunks: state.chunks,
      ...(state.withdrawn.length > 0 ? { withdrawn: state.withdrawn } : {}),
    };
    const waiters = state.waiters;
    const awaited = new Set(waiters.flatMap((waiter) => waiter.ids));
    state.messages = new Map();
    state.chunks = [];
    state.waiters = [];
    state.withdrawn = [];
    state.touched = false;
    state.inFlight = true;
    store.save(update).then(
      () => {
        state.inFlight = false;
        state.failures = 0;
        conversation.confirmSeqReserved(update.seqReserved);
        for (const waiter of waiters) waiter.resolve();
        if (!current(state)) return;
        if (state.waiters.length > 0) write(state);
        else if (state.touched || state.messages.size > 0 || state.withdrawn.length > 0) scheduleFlush(state, lifecycleDelayMs);
        else if (state.chunks.length > 0) scheduleFlush(state);
        else release(state);
      },
      (error: unknown) => {
        state.inFlight = false;
        const code = codeOf(error);
        const sessionId = conversation.sessionId;
        // Whoever waits learns now; their messages are not written later behind their back.
        rejectWaiters(state, waiters, error);
        if (!current(state)) return;
        if (code === 'session_not_found') {
          // Deleted meanwhile: nothing of it is to be kept, nor anyone to wait.
          rejectWaiters(state, state.waiters, error);
          clearTimers(state);
          states.delete(sessionId);
          if (states.size === 0) onIdle?.();
          return;
        }
        const background = update.messages.filter((message) => !awaited.has(message.id));
        state.withdrawn = [...(update.withdrawn ?? []), ...state.withdrawn];
        if (code === 'store_rejected' && awaited.size === 0) {
          // The store will never take this content; retrying it would fail every batch it joins.
          logger.error(
            { sessionId, messages: background.map((message) => message.id), err: String((error as { cause?: unknown }).cause ?? error) },
            'store refused a write for its content; those changes are not kept',
          );
          if (state.touched || state.messages.size > 0 || state.waiters.length > 0 || state.withdrawn.length > 0) write(state);
          else release(state);
          return;
        }
        if (code !== 'store_rejected') {
          // An outage: whoever waits behind this write learns now too, rather than after the backoff.
          rejectWaiters(state, state.waiters.splice(0), error);
          // The failed write may have committed anyway (the connection lost during COMMIT): the retry removes what its senders were refused.
          state.withdrawn = [...awaited, ...state.withdrawn];
        }
        // Put the failed write back in front of what came meanwhile (newer versions win, first places kept).
        const merged = new Map(background.map((message) => [message.id, message]));
        for (const [id, message] of state.messages) merged.set(id, message);
        state.messages = merged;
        state.touched = true;
        state.chunks = [...update.chunks!, ...state.chunks].slice(-maxPendingChunks);
        if (code === 'store_rejected') {
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
    for (const message of messages) state.messages.set(message.id, copyMessage(message));
    state.touched = true;
    scheduleFlush(state, delayMs);
  };

  const awaitWrite = (conversation: Conversation, messages: readonly Message[]): Promise<void> => {
    // A session that is never stored has nothing to wait for.
    if (!stored(conversation.sessionId)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const state = stateOf(conversation);
      for (const message of messages) state.messages.set(message.id, copyMessage(message));
      state.waiters.push({ ids: messages.map((message) => message.id), resolve, reject });
      state.touched = true;
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
      rejectWaiters(state, state.waiters.splice(0), new ChatError('session_not_found'));
      states.delete(sessionId);
      if (states.size === 0) onIdle?.();
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
