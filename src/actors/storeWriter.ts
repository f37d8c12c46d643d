import type { Conversation } from '../domain/conversation.ts';
import type { ChunkEvent } from '../domain/events.ts';
import type { SessionId } from '../domain/ids.ts';
import { copyMessage } from '../domain/message.ts';
import type { Message } from '../domain/message.ts';
import type { Clock, Logger, SessionStore, SessionUpdate } from '../domain/ports.ts';

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
  /** First delay before retrying a failed write; doubles up to `retryMaxMs` (defaults 100 ms, 5 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Chunks held for the store's resume log per session while it cannot be written (default 1,000). */
  maxPendingChunks?: number;
  /** False for a session that is never written (an ephemeral one); default: every session is. */
  stored?: (sessionId: SessionId) => boolean;
}

/**
 * Writes conversations behind the live sessions, so the store never sits on
 * the streaming path:
 * - lifecycle writes (message accepted, reply started or finished) go at once;
 * - while a reply streams, its text so far and its chunks are written at most
 *   every `flushIntervalMs` (what a crash can lose is bounded by that);
 * - one write per session is in flight at a time, so writes never overtake;
 * - a failed write is kept and retried with backoff: nothing acknowledged is
 *   dropped while the process lives, and `failing` lets new work be refused.
 * A session costs nothing here unless it has something unwritten.
 */
export interface StoreWriter {
  /** Queues the latest versions of these messages and the session's counters. */
  save(conversation: Conversation, messages: readonly Message[]): void;
  /** Notes a streamed chunk; the reply in progress is flushed on the interval. */
  chunk(conversation: Conversation, chunk: ChunkEvent): void;
  /** True while something of this session is not yet stored (it must not be passivated). */
  pending(sessionId: SessionId): boolean;
  /** True while the store refuses writes (the latest attempt failed). */
  readonly failing: boolean;
  /** Drops what is pending for a deleted session. */
  forget(sessionId: SessionId): void;
  /** Writes everything pending now; waits at most `timeoutMs`. Resolves with the sessions left unwritten. */
  close(timeoutMs?: number): Promise<number>;
}

interface PendingState {
  conversation: Conversation;
  messages: Map<string, Message>;
  chunks: ChunkEvent[];
  /** The session's own fields (stopped, counters) changed. */
  touched: boolean;
  flushTimer: unknown;
  retryTimer: unknown;
  inFlight: boolean;
  failures: number;
}

export function createStoreWriter(options: StoreWriterOptions): StoreWriter {
  const { store, clock, logger } = options;
  const flushIntervalMs = options.flushIntervalMs ?? 500;
  const flushStreaming = options.flushStreaming ?? true;
  const retryBaseMs = options.retryBaseMs ?? 100;
  const retryMaxMs = options.retryMaxMs ?? 5000;
  const maxPendingChunks = options.maxPendingChunks ?? 1000;
  const stored = options.stored ?? (() => true);
  const states = new Map<SessionId, PendingState>();
  let failing = false;
  let closing = false;
  let onIdle: (() => void) | undefined;

  const stateOf = (conversation: Conversation): PendingState => {
    let state = states.get(conversation.sessionId);
    if (!state) {
      state = {
        conversation,
        messages: new Map(),
        chunks: [],
        touched: false,
        flushTimer: undefined,
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
    if (state.touched || state.messages.size > 0 || state.chunks.length > 0) return;
    if (current(state)) states.delete(state.conversation.sessionId);
    if (states.size === 0) onIdle?.();
  };

  const scheduleFlush = (state: PendingState) => {
    if (state.flushTimer !== undefined || state.inFlight || state.retryTimer !== undefined) return;
    state.flushTimer = clock.setTimeout(() => {
      state.flushTimer = undefined;
      write(state);
    }, closing ? 0 : flushIntervalMs);
  };

  const write = (state: PendingState): void => {
    if (state.inFlight || state.retryTimer !== undefined) return;
    if (state.flushTimer !== undefined) {
      clock.clearTimeout(state.flushTimer);
      state.flushTimer = undefined;
    }
    const { conversation } = state;
    const messages = state.messages;
    // The reply still streaming goes with every write, with its text so far.
    const streaming = conversation.inProgress()?.reply;
    if (streaming && (state.chunks.length > 0 || messages.has(streaming.id))) messages.set(streaming.id, streaming);
    if (!state.touched && messages.size === 0 && state.chunks.length === 0) {
      release(state);
      return;
    }
    const update: SessionUpdate = {
      sessionId: conversation.sessionId,
      lastSeq: conversation.lastSeq,
      lastActiveAt: conversation.lastActiveAt,
      stopped: conversation.stopped,
      messages: [...messages.values()],
      chunks: state.chunks,
    };
    state.messages = new Map();
    state.chunks = [];
    state.touched = false;
    state.inFlight = true;
    store.save(update).then(
      () => {
        state.inFlight = false;
        state.failures = 0;
        failing = false;
        if (!current(state)) return;
        if (state.touched || state.messages.size > 0) write(state);
        else if (state.chunks.length > 0) scheduleFlush(state);
        else release(state);
      },
      (error: unknown) => {
        state.inFlight = false;
        state.failures += 1;
        failing = true;
        if (!current(state)) return;
        // Put the failed write back in front of what came meanwhile (newer versions win, first places kept).
        const merged = new Map(update.messages.map((message) => [message.id, message]));
        for (const [id, message] of state.messages) merged.set(id, message);
        state.messages = merged;
        state.touched = true;
        state.chunks = [...update.chunks!, ...state.chunks].slice(-maxPendingChunks);
        const delay = Math.min(retryBaseMs * 2 ** (state.failures - 1), retryMaxMs);
        logger.warn(
          { sessionId: conversation.sessionId, failures: state.failures, retryInMs: delay, err: String((error as { cause?: unknown }).cause ?? error) },
          'store write failed; will retry',
        );
        state.retryTimer = clock.setTimeout(() => {
          state.retryTimer = undefined;
          write(state);
        }, delay);
      },
    );
  };

  return {
    save(conversation, messages) {
      if (!stored(conversation.sessionId)) return;
      const state = stateOf(conversation);
      for (const message of messages) state.messages.set(message.id, copyMessage(message));
      state.touched = true;
      write(state);
    },

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

    get failing() {
      return failing;
    },

    forget(sessionId) {
      const state = states.get(sessionId);
      if (!state) return;
      if (state.flushTimer !== undefined) clock.clearTimeout(state.flushTimer);
      if (state.retryTimer !== undefined) clock.clearTimeout(state.retryTimer);
      states.delete(sessionId);
      if (states.size === 0) {
        // No write is left to prove the store healthy again: let the next one find out.
        failing = false;
        onIdle?.();
      }
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
