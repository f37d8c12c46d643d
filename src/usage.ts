import type { Router } from 'express';
import type { KeyRing } from './actors/keyRing.ts';
import type { SessionRegistry } from './actors/sessionRegistry.ts';
import { createTokenLedger } from './actors/tokenLedger.ts';
import type { TokenLedger } from './actors/tokenLedger.ts';
import { recordUsage } from './actors/usageRecorder.ts';
import type { Usage } from './domain/message.ts';
import type { Clock, EventBus, Logger, SessionStore } from './domain/ports.ts';
import { createMemoryUsageStore } from './infra/memoryUsageStore.ts';
import type { ChatMetrics } from './infra/prometheusMetrics.ts';
import type { Authenticator } from './transport/authenticate.ts';
import { createAdminUsageRoutes, createUsageRoutes } from './transport/usageRoutes.ts';

export interface UsageOptions {
  store: SessionStore;
  bus: EventBus;
  clock: Clock;
  logger: Logger;
  /** Spent tokens are written this often (default 1 s). */
  flushMs?: number;
  defaultModel: string;
}

/** Tokens spent per key, day and model, wired once: the ledger, what feeds it, what reports it. */
export interface UsageWiring {
  readonly ledger: TokenLedger;
  /** Starts charging finished replies to their sessions' keys, and counting them in `metrics` by key name. */
  start(sources: { registry: SessionRegistry; keyRing: KeyRing | undefined; metrics: () => ChatMetrics | undefined }): void;
  /** `GET /api/usage` (the caller's own). */
  routes(auth: Authenticator): Router;
  /** `GET /admin/usage`, when there are keys and an admin token. */
  adminRoutes(keyRing: KeyRing | undefined, adminToken: string | undefined): Router | undefined;
  /** Stops charging and writes what is pending. */
  close(): Promise<void>;
}

export function createUsage(options: UsageOptions): UsageWiring {
  const { clock } = options;
  let countTokensOf: (keyId: string, model: string, usage: Usage) => void = () => {};
  const ledger = createTokenLedger({
    store: options.store.usage ?? createMemoryUsageStore(),
    clock,
    logger: options.logger,
    ...(options.flushMs !== undefined ? { flushMs: options.flushMs } : {}),
    onRecord: (keyId, model, usage) => countTokensOf(keyId, model, usage),
  });
  let stopRecording = () => {};
  return {
    ledger,
    start({ registry, keyRing, metrics }) {
      stopRecording = recordUsage({ bus: options.bus, ledger, ownerOf: (sessionId) => registry.peek(sessionId)?.owner, defaultModel: options.defaultModel });
      // Metrics name a key by its name (never its secret), looked up once a minute at most.
      const keyNames = new Map<string, { name: string; at: number }>();
      countTokensOf = (keyId, model, usage) => {
        const sink = metrics();
        if (!sink) return;
        if (keyId === '' || !keyRing) return sink.tokens('', model, usage);
        const known = keyNames.get(keyId);
        if (known && clock.now() - known.at < 60_000) return sink.tokens(known.name, model, usage);
        keyRing.names([keyId]).then(
          (names) => {
            const name = names.get(keyId) ?? known?.name ?? 'unknown';
            keyNames.set(keyId, { name, at: clock.now() });
            sink.tokens(name, model, usage);
          },
          () => sink.tokens(known?.name ?? 'unknown', model, usage),
        );
      };
    },
    routes: (auth) => createUsageRoutes({ ledger, auth, clock }),
    adminRoutes: (keyRing, adminToken) =>
      keyRing && adminToken ? createAdminUsageRoutes({ ledger, clock, adminToken, keyNames: (ids) => keyRing.names(ids) }) : undefined,
    async close() {
      stopRecording();
      await ledger.close();
    },
  };
}
