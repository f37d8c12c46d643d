import type { ConversationRecord } from '../domain/conversationRecord.ts';
import type { ChunkEvent } from '../domain/events.ts';
import type { SessionId } from '../domain/ids.ts';
import { copyMessage } from '../domain/message.ts';
import type { Message } from '../domain/message.ts';
import { FencedWriteError } from '../domain/ownership.ts';
import { ChatError } from '../domain/errors.ts';
import type { LoadWindow, MessagePageQuery, SessionPageQuery, SessionStore, SessionSummary, SessionUpdate } from '../domain/ports.ts';
import { createMemoryKeyStore } from './memoryKeyStore.ts';
import { decodeMessageCursor, decodeSessionCursor, encodeMessageCursor, encodeSessionCursor } from './pageCursor.ts';
import { createMemoryUsageStore } from './memoryUsageStore.ts';
import { chunkPlan, chunksOfText } from './sessionUpdates.ts';
import { PREVIEW_CHARS } from './sql/rows.ts';

interface StoredMessage {
  message: Message;
  /** The chunk log of a reply still streaming (see sessionUpdates.ts). */
  log?: { firstSeq: number; nextSeq: number; lengths: number[] };
}

interface StoredSession {
  record: Omit<ConversationRecord, 'messages' | 'lastSeq' | 'seqReserved' | 'lastActiveAt' | 'stopped'>;
  lastActiveAt: number;
  lastSeq: number;
  seqReserved: number;
  stopped: boolean;
  messages: Map<string, StoredMessage>;
  /** The same messages in conversation order (by `order`), for paging in O(log n + page). */
  ordered: StoredMessage[];
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

  const put = (stored: StoredSession, message: Message) => {
    const existing = stored.messages.get(message.id);
    if (existing) {
      existing.message = copyMessage(message);
      return;
    }
    const entry: StoredMessage = { message: copyMessage(message) };
    stored.messages.set(message.id, entry);
    // Usually the newest; a reply lands right after its question, before messages queued meanwhile.
    stored.ordered.splice(firstAfter(stored.ordered, message.order), 0, entry);
  };

  const previewOf = (stored: StoredSession): string | undefined => {
    for (const { message } of stored.ordered) {
      // By characters, as the SQL stores' substr counts them (never half a surrogate pair).
      if (message.role === 'user') return Array.from(message.content.slice(0, 2 * PREVIEW_CHARS)).slice(0, PREVIEW_CHARS).join('');
    }
    return undefined;
  };

  const summary = (sessionId: SessionId, stored: StoredSession, preview = previewOf(stored)): SessionSummary => ({
    sessionId,
    createdAt: stored.record.createdAt,
    lastActiveAt: stored.lastActiveAt,
    stopped: stored.stopped,
    messageCount: stored.messages.size,
    ...(stored.record.title !== undefined ? { title: stored.record.title } : {}),
    ...(stored.record.metadata !== undefined ? { metadata: structuredClone(stored.record.metadata) } : {}),
    ...(preview ? { preview } : {}),
    ...(stored.record.model !== undefined ? { model: stored.record.model } : {}),
  });

  return {
    durable: false,
    keys: createMemoryKeyStore(),
    usage: createMemoryUsageStore(),

    async create(record: ConversationRecord) {
      const { messages, lastSeq, seqReserved, lastActiveAt, stopped, ...rest } = record;
      // A shallow copy, and a deep one of the metadata only: structuredClone
      // of every record was a measured share of activating 100,000 sessions.
      const { metadata, ...plain } = rest;
      const stored: StoredSession = {
        record: metadata === undefined ? { ...plain } : { ...plain, metadata: structuredClone(metadata) },
        lastActiveAt,
        lastSeq,
        seqReserved,
        stopped,
        messages: new Map(),
        ordered: [],
        logged: new Set(),
        fence: 0,
      };
      for (const message of messages) put(stored, message);
      sessions.set(record.sessionId, stored);
    },

    async load(sessionId: SessionId, window?: LoadWindow) {
      const stored = sessions.get(sessionId);
      if (!stored) return undefined;
      let entries = stored.ordered;
      if (window !== undefined) {
        let start = entries.length;
        let chars = 0;
        while (start > 0 && (start === entries.length || (entries.length - start < window.maxMessages && chars < window.maxChars))) {
          start -= 1;
          chars += entries[start]!.message.content.length;
        }
        const unfinished = entries.slice(0, start).filter(({ message }) => message.status === 'queued' || message.status === 'streaming');
        entries = [...unfinished, ...entries.slice(start)];
      }
      return {
        ...stored.record,
        ...(stored.record.metadata !== undefined ? { metadata: structuredClone(stored.record.metadata) } : {}),
        sessionId,
        lastActiveAt: stored.lastActiveAt,
        lastSeq: stored.lastSeq,
        seqReserved: stored.seqReserved,
        stopped: stored.stopped,
        messages: entries.map(({ message }) => copyMessage(message)),
      };
    },

    async save(update: SessionUpdate) {
      const stored = sessions.get(update.sessionId);
      if (!stored) throw new ChatError('session_not_found', 'The session is not stored (deleted meanwhile); nothing was kept.');
      if (update.fence !== undefined) {
        if (update.fence < stored.fence) throw new FencedWriteError(update.sessionId);
        stored.fence = update.fence;
      }
      stored.lastSeq = Math.max(stored.lastSeq, update.lastSeq);
      stored.seqReserved = Math.max(stored.seqReserved, update.seqReserved);
      stored.lastActiveAt = Math.max(stored.lastActiveAt, update.lastActiveAt);
      stored.stopped = update.stopped;
      for (const id of update.withdrawn ?? []) {
        const entry = stored.messages.get(id);
        if (!entry) continue;
        stored.messages.delete(id);
        stored.ordered.splice(stored.ordered.indexOf(entry), 1);
        stored.logged.delete(id);
      }
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

    async delete(sessionId: SessionId, owner?: string) {
      if (owner !== undefined && sessions.get(sessionId)?.record.owner !== owner) return false;
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

    async listSessions(query: SessionPageQuery) {
      const after = query.cursor === undefined ? undefined : decodeSessionCursor(query.cursor);
      const ordered = [...sessions.entries()]
        .filter(([, stored]) => query.owner === undefined || stored.record.owner === query.owner)
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
      const { ordered } = stored;
      let page: StoredMessage[];
      let more: boolean;
      if (descending) {
        const end = from === undefined ? ordered.length : firstAfter(ordered, from - 1);
        page = ordered.slice(Math.max(0, end - query.limit), end).reverse();
        more = end > query.limit;
      } else {
        const start = from === undefined ? 0 : firstAfter(ordered, from);
        page = ordered.slice(start, start + query.limit);
        more = ordered.length - start > query.limit;
      }
      const last = page[page.length - 1];
      return {
        messages: page.map(({ message }) => copyMessage(message)),
        nextCursor: more && last ? encodeMessageCursor(last.message.order) : null,
      };
    },

    async idleSessions(before: number, limit: number) {
      return [...sessions.entries()]
        .filter(([, stored]) => stored.lastActiveAt < before)
        .sort(([, a], [, b]) => a.lastActiveAt - b.lastActiveAt)
        .slice(0, limit)
        .map(([sessionId]) => sessionId);
    },

    async chunksAfter(sessionId: SessionId, afterSeq: number) {
      const stored = sessions.get(sessionId);
      if (!stored) return [];
      const chunks: ChunkEvent[] = [];
      for (const id of stored.logged) {
        const { message, log } = stored.messages.get(id)!;
        if (log) chunks.push(...chunksOfText(sessionId, message.id, message.content, log.firstSeq, log.lengths, afterSeq));
      }
      return chunks.sort((a, b) => a.seq - b.seq);
    },
  };
}

/** Index of the first entry whose order is greater than `order` (binary search). */
function firstAfter(ordered: readonly StoredMessage[], order: number): number {
  let low = 0;
  let high = ordered.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (ordered[middle]!.message.order <= order) low = middle + 1;
    else high = middle;
  }
  return low;
}
