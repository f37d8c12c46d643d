import type { SessionStore, SessionUpdate } from '../../src/domain/ports.ts';
import { ChatError } from '../../src/domain/errors.ts';

/**
 * A real store behind a switch that makes it fail like a full disk or a
 * database that went away (every call rejects with store_unavailable), and
 * that records every update it is asked to save.
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
  return {
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
    delete: (sessionId) => gate(() => inner.delete(sessionId)),
    ping: () => gate(() => inner.ping()),
    close: () => inner.close(),
    listSessions: (query) => gate(() => inner.listSessions(query)),
    listMessages: (sessionId, query) => gate(() => inner.listMessages(sessionId, query)),
    chunksAfter: (sessionId, afterSeq) => gate(() => inner.chunksAfter(sessionId, afterSeq)),
  };
}
