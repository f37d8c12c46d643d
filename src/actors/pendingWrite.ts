import type { Conversation } from '../domain/conversation.ts';
import type { ChunkEvent } from '../domain/events.ts';
import { copyMessage } from '../domain/message.ts';
import type { Message } from '../domain/message.ts';
import type { SessionUpdate } from '../domain/ports.ts';
import type { Wakeup } from '../infra/sharedWakeups.ts';

/** Someone waiting on a session's next write (a message's acknowledgement, a chunk-number mark). */
export interface Waiter {
  /** Messages that are written only for this waiter (dropped if its write fails). */
  ids: readonly string[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** One write taken from a session: the update, and whoever waits on it. */
export interface TakenWrite {
  update: SessionUpdate;
  waiters: readonly Waiter[];
  /** Ids of the messages written only for those waiters. */
  awaited: ReadonlySet<string>;
}

const NONE_AWAITED: ReadonlySet<string> = new Set<string>();
const NO_WAITERS: readonly Waiter[] = Object.freeze([]);
const NO_CHUNKS: readonly ChunkEvent[] = Object.freeze([]);
const NO_MESSAGES: readonly Message[] = Object.freeze([]);

function indexOfId(messages: readonly Message[], id: string): number {
  for (let index = 0; index < messages.length; index += 1) if (messages[index]!.id === id) return index;
  return -1;
}

/**
 * What of one session is not yet stored, and the timers and write in flight
 * that will store it (the store writer keeps one per session with something
 * unwritten, and none otherwise).
 */
export class PendingWrite {
  /**
   * The latest version of each queued message, in first-queued order. An
   * array, not a Map: a write holds one or two, and a Map (its hash table)
   * made afresh for each of a reply's five writes outlived the scavenges
   * while the write was in flight.
   */
  messages: Message[] = [];
  chunks: ChunkEvent[] = [];
  waiters: Waiter[] = [];
  /** Messages refused after a failed write that might have committed anyway: removed by a later write. */
  withdrawn: string[] = [];
  /** The session's own fields (stopped, counters) changed. */
  touched = false;
  flushTimer: Wakeup | undefined = undefined;
  /** When the flush timer fires. */
  flushAt = 0;
  retryTimer: unknown = undefined;
  inFlight = false;
  failures = 0;

  constructor(public conversation: Conversation) {}

  /** Something is queued that no write has taken yet. */
  get unwritten(): boolean {
    return this.touched || this.messages.length > 0 || this.chunks.length > 0 || this.waiters.length > 0 || this.withdrawn.length > 0;
  }

  /** Nothing queued, nothing in flight, no timer: the session costs nothing and can be dropped. */
  get settled(): boolean {
    return !this.inFlight && this.flushTimer === undefined && this.retryTimer === undefined && !this.unwritten;
  }

  /** Queues the latest version of these messages (copies: the conversation goes on changing them). */
  queue(messages: readonly Message[]): void {
    for (const message of messages) this.#put(copyMessage(message));
    this.touched = true;
  }

  /** Keeps `message` as its id's latest version (in the place of an older one). */
  #put(message: Message): void {
    const index = indexOfId(this.messages, message.id);
    if (index === -1) this.messages.push(message);
    else this.messages[index] = message;
  }

  #drop(id: string): void {
    const index = indexOfId(this.messages, id);
    if (index !== -1) this.messages.splice(index, 1);
  }

  /**
   * Takes everything queued as one write, with the reply still streaming and
   * its text so far; undefined when there is nothing to write.
   */
  take(): TakenWrite | undefined {
    const { conversation, messages } = this;
    // (Only the reply is copied: copying its prompt and inputs too on every flush was garbage per chunk.)
    if (this.chunks.length > 0 || conversation.generating) {
      const streaming = conversation.streamingReply();
      if (streaming && (this.chunks.length > 0 || indexOfId(messages, streaming.id) !== -1)) this.#put(streaming);
    }
    if (!this.unwritten) return undefined;
    const update: { -readonly [K in keyof SessionUpdate]: SessionUpdate[K] } = {
      sessionId: conversation.sessionId,
      lastSeq: conversation.lastSeq,
      seqReserved: conversation.seqReservation,
      lastActiveAt: conversation.lastActiveAt,
      stopped: conversation.stopped,
      // The queued array itself (a fresh one collects from now on), not a copy.
      messages: messages.length > 0 ? messages : NO_MESSAGES,
      // Never the array that goes on collecting: the write in flight keeps what it took.
      chunks: this.chunks.length > 0 ? this.chunks : NO_CHUNKS,
    };
    if (this.withdrawn.length > 0) {
      update.withdrawn = this.withdrawn;
      this.withdrawn = [];
    }
    let waiters: readonly Waiter[] = NO_WAITERS;
    // Four of a reply's five writes have no one waiting: they share one empty set
    // rather than each holding a Set of its own until the write answers.
    let awaited: ReadonlySet<string> = NONE_AWAITED;
    if (this.waiters.length > 0) {
      const ids = new Set<string>();
      waiters = this.waiters;
      for (const waiter of waiters) for (const id of waiter.ids) ids.add(id);
      awaited = ids;
      this.waiters = [];
    }
    if (messages.length > 0) this.messages = [];
    if (this.chunks.length > 0) this.chunks = [];
    this.touched = false;
    return { update, waiters, awaited };
  }

  /** Fails these waiters and drops the messages written only for them. */
  rejectWaiters(waiters: readonly Waiter[], error: unknown): void {
    for (const waiter of waiters) {
      for (const id of waiter.ids) this.#drop(id);
      waiter.reject(error);
    }
  }

  /** Drops a write the store refused for its content (and no one waits on): only the withdrawals it carried go again. */
  dropRefused(taken: TakenWrite): void {
    this.withdrawn = [...(taken.update.withdrawn ?? []), ...this.withdrawn];
  }

  /**
   * Puts a failed write back in front of what came meanwhile (newer versions
   * win, first places kept), without the messages of its waiters (they were
   * refused). After an outage those may have committed anyway (the
   * connection lost during COMMIT): the next write removes them.
   */
  putBack(taken: TakenWrite, outage: boolean, maxChunks: number): void {
    const { update, awaited } = taken;
    this.withdrawn = [...(outage ? awaited : []), ...(update.withdrawn ?? []), ...this.withdrawn];
    const newer = this.messages;
    this.messages = update.messages.filter((message) => !awaited.has(message.id));
    for (const message of newer) this.#put(message);
    this.touched = true;
    this.chunks = [...(update.chunks ?? []), ...this.chunks].slice(-maxChunks);
  }
}
