import type { SessionStore } from '../domain/ports.ts';

export type StoreOperation = 'create' | 'load' | 'save' | 'delete' | 'ping' | 'list';

export interface TrackedStore extends SessionStore {
  /** Resolves when every write started so far has settled (the shutdown flush). */
  settled(): Promise<void>;
}

export interface TrackedStoreOptions {
  /** Told of every failed operation (metrics); the error still reaches the caller. */
  onError?: (operation: StoreOperation, error: unknown) => void;
}

/**
 * Wraps a store to count its failures and to know which writes are still in
 * flight: sessions write fire-and-forget, so without this a shutdown could
 * close the store under a write.
 */
export function trackStore(store: SessionStore, options: TrackedStoreOptions = {}): TrackedStore {
  // A count, not a set of promises: each write's `then` + `finally` and the
  // set's add and delete were 1.7% of the CPU while a burst streams (a write
  // per flush per session), for an answer only shutdown asks for.
  let inFlight = 0;
  let waiters: (() => void)[] = [];
  const settle = () => {
    inFlight -= 1;
    if (inFlight > 0 || waiters.length === 0) return;
    const ready = waiters;
    waiters = [];
    for (const resolve of ready) resolve();
  };
  // One failure handler per operation, made here: not two closures per call (a write per flush per session).
  const failedAs = (operation: StoreOperation) => (error: unknown) => {
    settle();
    options.onError?.(operation, error);
  };
  const failed: Record<StoreOperation, (error: unknown) => void> = {
    create: failedAs('create'),
    load: failedAs('load'),
    save: failedAs('save'),
    delete: failedAs('delete'),
    ping: failedAs('ping'),
    list: failedAs('list'),
  };
  const track = <T>(operation: StoreOperation, promise: Promise<T>): Promise<T> => {
    inFlight += 1;
    promise.then(settle, failed[operation]);
    return promise;
  };
  return {
    ...(store.durable === undefined ? {} : { durable: store.durable }),
    ...(store.keys === undefined ? {} : { keys: store.keys }),
    ...(store.usage ? { usage: store.usage } : {}),
    create: (record) => track('create', store.create(record)),
    load: (sessionId, window) => track('load', store.load(sessionId, window)),
    save: (update) => track('save', store.save(update)),
    delete: (sessionId, owner) => track('delete', store.delete(sessionId, owner)),
    ping: () => track('ping', store.ping()),
    listSessions: (query) => track('list', store.listSessions(query)),
    listMessages: (sessionId, query) => track('list', store.listMessages(sessionId, query)),
    idleSessions: (before, limit) => track('list', store.idleSessions(before, limit)),
    chunksAfter: (sessionId, afterSeq) => track('load', store.chunksAfter(sessionId, afterSeq)),
    ...(store.claim ? { claim: (sessionId: string, token: number) => track('save', store.claim!(sessionId, token)) } : {}),
    close: () => store.close(),
    async settled() {
      while (inFlight > 0) await new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}
