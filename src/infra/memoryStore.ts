import type { ConversationRecord } from '../domain/conversationRecord.ts';
import type { ChunkEvent } from '../domain/events.ts';
import type { SessionId } from '../domain/ids.ts';
import { copyMessage } from '../domain/message.ts';
import type { Message } from '../domain/message.ts';
import { FencedWriteError } from '../domain/ownership.ts';
import type { MessagePageQuery, PageQuery, SessionStore, SessionSummary, SessionUpdate } from '../domain/ports.ts';
import { decodeMessageCursor, decodeSessionCursor, encodeMessageCursor, encodeSessionCursor } from './pageCursor.ts';
import { chunkPlan, chunksOfText } from './sessionUpdates.ts';

interface StoredMessage {
  message: Message;
  /** Place in history: the order of first write, as the SQL stores keep it. */
  position: number;
  /** The chunk log of a reply still streaming (see sessionUpdates.ts). */
  log?: { firstSeq: number; nextSeq: number; lengths: number[] };
}

interface StoredSession {
  record: Omit<ConversationRecord, 'messages' | 'lastSeq' | 'lastActiveAt' | 'stopped'>;
  lastActiveAt: number;
  lastSeq: number;
  stopped: boolean;
  messages: Map<string, StoredMessage>;
  /** Ids of the messages that have a chunk log (at most a few), so a save never walks the whole history. */
  logged: Set<string>;
  /** The newest fencing token that claimed or wrote this session (0: none). */
  fence: number;
}

/**
 * The store port held in process memory: for tests and `--store memory`.
 * It copies on the way in and out, as a real database would, so nobody can
 * change stored data by holding a reference. It follows the same contract as
 * the SQL stores (test/store/storeContract.ts runs against all of them).
 */
export function createMemoryStore(): SessionStore {
  const sessions = new Map<SessionId, StoredSession>();
  let nextPosition = 1;

  const put = (stored: StoredSession, message: Message) => {
    const existing = stored.messages.get(message.id);
    if (existing) existing.message = copyMessage(message);
    else stored.messages.set(message.id, { message: copyMessage(message), position: nextPosition++ });
  };

  const summary = (sessionId: SessionId, stored: StoredSession): SessionSummary => ({
    sessionId,
    createdAt: stored.record.createdAt,
    lastActiveAt: stored.lastActiveAt,
    stopped: stored.stopped,
    messageCount: stored.messages.size,
    ...(stored.record.title !== undefined ? { title: stored.record.title } : {}),
    ...(stored.record.metadata !== undefined ? { metadata: structuredClone(stored.record.metadata) } : {}),
  });

  return {
    durable: false,

    async create(record: ConversationRecord) {
      const { messages, lastSeq, lastActiveAt, stopped, ...rest } = record;
      // A shallow copy, and a deep one of the metadata only: structuredClone
      // of every record was a measured share of activating 100,000 sessions.
      const { metadata, ...plain } = rest;
      const stored: StoredSession = {
        record: metadata === undefined ? { ...plain } : { ...plain, metadata: structuredClone(metadata) },
        lastActiveAt,
        lastSeq,
        stopped,
        messages: new Map(),
        logged: new Set(),
        fence: 0,
      };
      for (const message of messages) put(stored, message);
      sessions.set(record.sessionId, stored);
    },

    async load(sessionId: SessionId) {
      const stored = sessions.get(sessionId);
      if (!stored) return undefined;
      return {
        ...stored.record,
        ...(stored.record.metadata !== undefined ? { metadata: structuredClone(stored.record.metadata) } : {}),
        sessionId,
        lastActiveAt: stored.lastActiveAt,
        lastSeq: stored.lastSeq,
        stopped: stored.stopped,
        messages: [...stored.messages.values()].map(({ message }) => copyMessage(message)),
      };
    },

    async save(update: SessionUpdate) {
      const stored = sessions.get(update.sessionId);
      if (!stored) return; // deleted meanwhile: nothing to keep
      if (update.fence !== undefined) {
        if (update.fence < stored.fence) throw new FencedWriteError(update.sessionId);
        stored.fence = update.fence;
      }
      stored.lastSeq = Math.max(stored.lastSeq, update.lastSeq);
      stored.lastActiveAt = Math.max(stored.lastActiveAt, update.lastActiveAt);
      stored.stopped = update.stopped;
      for (const message of update.messages) put(stored, message);
      const plan = chunkPlan(update);
      const dropLog = (id: string) => {
        const entry = stored.messages.get(id);
        if (entry) delete entry.log;
        stored.logged.delete(id);
      };
      for (const id of plan.dropMessages) dropLog(id);
      if (plan.keepOnly !== undefined) {
        for (const id of [...stored.logged]) if (id !== plan.keepOnly) dropLog(id);
      }
      for (const append of plan.appends) {
        const entry = stored.messages.get(append.messageId);
        if (!entry) continue;
        if (!entry.log) {
          entry.log = { firstSeq: append.firstSeq, nextSeq: append.firstSeq, lengths: [] };
          stored.logged.add(append.messageId);
        }
        if (entry.log.nextSeq !== append.firstSeq) continue; // a retry or a gap: keep what is right
        entry.log.lengths.push(...append.lengths);
        entry.log.nextSeq = append.nextSeq;
      }
    },

    async delete(sessionId: SessionId) {
      return sessions.delete(sessionId);
    },

    async claim(sessionId: SessionId, token: number) {
      const stored = sessions.get(sessionId);
      if (!stored) return undefined;
      if (token <= stored.fence) return { claimed: false, fence: stored.fence };
      stored.fence = token;
      return { claimed: true, fence: token };
    },

    async ping() {},

    async close() {
      sessions.clear();
    },

    async listSessions(query: PageQuery) {
      const after = query.cursor === undefined ? undefined : decodeSessionCursor(query.cursor);
      const ordered = [...sessions.entries()]
        .map(([sessionId, stored]) => ({ sessionId, createdAt: stored.record.createdAt, stored }))
        .sort((a, b) => b.createdAt - a.createdAt || (a.sessionId < b.sessionId ? 1 : a.sessionId > b.sessionId ? -1 : 0))
        .filter(
          (entry) =>
            after === undefined ||
            entry.createdAt < after.createdAt ||
            (entry.createdAt === after.createdAt && entry.sessionId < after.sessionId),
        );
      const page = ordered.slice(0, query.limit);
      const last = page[page.length - 1];
      return {
        sessions: page.map(({ sessionId, stored }) => summary(sessionId, stored)),
        nextCursor: ordered.length > query.limit && last ? encodeSessionCursor(last) : null,
      };
    },

    async listMessages(sessionId: SessionId, query: MessagePageQuery) {
      const stored = sessions.get(sessionId);
      if (!stored) return undefined;
      const descending = query.order === 'desc';
      const from = query.cursor === undefined ? undefined : decodeMessageCursor(query.cursor);
      let all = [...stored.messages.values()];
      if (descending) all = all.reverse();
      const rest = from === undefined ? all : all.filter(({ position }) => (descending ? position < from : position > from));
      const page = rest.slice(0, query.limit);
      const last = page[page.length - 1];
      return {
        messages: page.map(({ message }) => copyMessage(message)),
        nextCursor: rest.length > query.limit && last ? encodeMessageCursor(last.position) : null,
      };
    },

    async chunksAfter(sessionId: SessionId, afterSeq: number) {
      const stored = sessions.get(sessionId);
      if (!stored) return [];
      const chunks: ChunkEvent[] = [];
      for (const { message, log } of stored.messages.values()) {
        if (log) chunks.push(...chunksOfText(sessionId, message.id, message.content, log.firstSeq, log.lengths, afterSeq));
      }
      return chunks.sort((a, b) => a.seq - b.seq);
    },
  };
}
