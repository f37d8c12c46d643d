import type { ConversationRecord } from '../domain/conversation.ts';
import type { SessionId } from '../domain/ids.ts';
import { copyMessage } from '../domain/message.ts';
import type { Message } from '../domain/message.ts';
import type { SessionStore, SessionUpdate } from '../domain/ports.ts';

interface StoredSession {
  createdAt: number;
  lastActiveAt: number;
  lastSeq: number;
  stopped: boolean;
  messages: Map<string, Message>;
}

/**
 * The store port held in process memory: for tests and `--store memory`.
 * It copies on the way in and out, as a real database would, so nobody can
 * change stored data by holding a reference.
 */
export function createMemoryStore(): SessionStore {
  const sessions = new Map<SessionId, StoredSession>();

  return {
    async create(record: ConversationRecord) {
      sessions.set(record.sessionId, {
        createdAt: record.createdAt,
        lastActiveAt: record.lastActiveAt,
        lastSeq: record.lastSeq,
        stopped: record.stopped,
        messages: new Map(record.messages.map((message) => [message.id, copyMessage(message)])),
      });
    },

    async load(sessionId: SessionId) {
      const stored = sessions.get(sessionId);
      if (!stored) return undefined;
      return {
        sessionId,
        createdAt: stored.createdAt,
        lastActiveAt: stored.lastActiveAt,
        lastSeq: stored.lastSeq,
        stopped: stored.stopped,
        messages: [...stored.messages.values()].map(copyMessage),
      };
    },

    async save(update: SessionUpdate) {
      const stored = sessions.get(update.sessionId);
      if (!stored) return; // deleted meanwhile: nothing to keep
      stored.lastSeq = update.lastSeq;
      stored.lastActiveAt = update.lastActiveAt;
      stored.stopped = update.stopped;
      for (const message of update.messages) stored.messages.set(message.id, copyMessage(message));
    },

    async delete(sessionId: SessionId) {
      return sessions.delete(sessionId);
    },

    async ping() {},

    async close() {
      sessions.clear();
    },
  };
}
