import type { KeyStore } from '../../src/domain/apiKeys.ts';
import type { SessionStore, SessionUpdate } from '../../src/domain/ports.ts';
import { ChatError } from '../../src/domain/errors.ts';

/**
 * A real store behind a switch that makes it fail like a full disk or a
 * database that went away (every call rejects with store_unavailable, its
 * API keys' too: they live in the same database), and that records every
 * update it is asked to save.
 */
export interface FlakyStore extends SessionStore {
  down: boolean;
  readonly saved: SessionUpdate[];
}

export function flaky(inner: SessionStore): FlakyStore {
  const saved: SessionUpdate[] = [];
  const state = { down: false };
  const gate = <T>(work: () => Promise<T>): Promise<T> =>
    state.down ? Promise.reject(new ChatError('store_unavailable', undefined, { cause: new Error('SQLITE_FULL (test)') })) : work();
  const keys = (inner: KeyStore): KeyStore => ({
    create: (key) => gate(() => inner.create(key)),
    findByHash: (hash) => gate(() => inner.findByHash(hash)),
    findByIds: (ids) => gate(() => inner.findByIds(ids)),
    listActive: () => gate(() => inner.listActive()),
    update: (id, change) => gate(() => inner.update(id, change)),
    revoke: (id, at) => gate(() => inner.revoke(id, at)),
    touch: (id, at) => gate(() => inner.touch(id, at)),
    hasActive: () => gate(() => inner.hasActive()),
  });
  return {
    // Never `durable: false`, whatever it wraps: it stands in for a database (mid-reply flushes, chunk numbers reserved).
    ...(inner.keys === undefined ? {} : { keys: keys(inner.keys) }),
    get down() {
      return state.down;
    },
    set down(value: boolean) {
      state.down = value;
    },
    saved,
    create: (record) => gate(() => inner.create(record)),
    load: (sessionId, window) => gate(() => inner.load(sessionId, window)),
    save: (update) =>
      gate(() => {
        saved.push(structuredClone(update));
        return inner.save(update);
      }),
    delete: (sessionId, owner) => gate(() => inner.delete(sessionId, owner)),
    ping: () => gate(() => inner.ping()),
    close: () => inner.close(),
    listSessions: (query) => gate(() => inner.listSessions(query)),
    listMessages: (sessionId, query) => gate(() => inner.listMessages(sessionId, query)),
    idleSessions: (before, limit) => gate(() => inner.idleSessions(before, limit)),
    chunksAfter: (sessionId, afterSeq) => gate(() => inner.chunksAfter(sessionId, afterSeq)),
  };
}
