import type { SessionId } from './ids.ts';
import type { Message } from './message.ts';

export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** Free-form data a client attaches to a session (kept, never interpreted). */
export type SessionMetadata = { readonly [key: string]: JsonValue };

/** Optional descriptive fields given when a session is created. */
export interface SessionDetails {
  readonly title?: string;
  readonly metadata?: SessionMetadata;
  /** The id of the API key that created the session; absent when it was made without one (`--auth none`). */
  readonly owner?: string;
}

/** What a store keeps of a session, and what re-activation restores from. */
export interface ConversationRecord {
  readonly sessionId: SessionId;
  readonly createdAt: number;
  readonly lastActiveAt: number;
  /** Sequence number of the last chunk streamed; the resume position. */
  readonly lastSeq: number;
  /**
   * The high-water mark of chunk numbers: no chunk numbered above it was
   * ever sent. Written before chunks past it go out, so after any crash the
   * session goes on from here without reusing a number a client saw.
   */
  readonly seqReserved: number;
  readonly stopped: boolean;
  /** Oldest first (by `order`): all of them, or a recent window and every unfinished one (see SessionStore.load). */
  readonly messages: readonly Message[];
  readonly title?: string;
  readonly metadata?: SessionMetadata;
  readonly owner?: string;
}
