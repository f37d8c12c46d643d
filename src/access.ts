import type { IncomingMessage } from 'node:http';
import { createKeyRing } from './actors/keyRing.ts';
import type { KeyRing } from './actors/keyRing.ts';
import type { Sessions } from './actors/sessions.ts';
import type { LimiterFactory } from './infra/rateLimiters.ts';
import type { TokenLedger } from './actors/tokenLedger.ts';
import type { ModelCatalog } from './model.ts';
import { keysReportingTo } from './actors/storeHealth.ts';
import type { StoreHealth } from './actors/storeHealth.ts';
import type { KeyStore, ResolvedLimits } from './domain/apiKeys.ts';
import type { Clock, Logger, SessionStore } from './domain/ports.ts';
import { createMemoryKeyStore } from './infra/memoryKeyStore.ts';
import type { Admission } from './transport/admission.ts';
import { createAuthenticator } from './transport/authenticate.ts';
import type { Authenticator, AuthMode, Caller } from './transport/authenticate.ts';
import { createCallerSessions } from './transport/callerSessions.ts';
import type { CallerSessions } from './transport/callerSessions.ts';
import { createClientLimits } from './transport/clientLimits.ts';
import type { ClientLimits } from './transport/clientLimits.ts';
import { createKeyConnections } from './transport/keyConnections.ts';
import type { KeyConnections } from './transport/keyConnections.ts';
import { createOriginPolicy } from './transport/origins.ts';
import type { OriginPolicy } from './transport/origins.ts';
import { clientAddressOf } from './transport/clientAddress.ts';

/** Who may use the server, and how much. */
export interface AuthOptions {
  /** `keys` (the default): every request needs an API key; `none`: anyone may use every session (as before keys). */
  mode: AuthMode;
  /** Guards `/admin/keys`; without it there is no admin API (keys can still be made with `--new-key`). */
  adminToken?: string;
  /** Browser origins allowed besides the server's own (WebSocket upgrades, the cookie, keys in URLs). */
  allowedOrigins?: readonly string[];
  /** Each key's limits unless it has its own (0 = no limit). */
  keyLimits?: Partial<ResolvedLimits>;
  /** How long a key that authenticated is trusted without asking the store (default 1 s; a revocation by another node takes this long). */
  keyCacheMs?: number;
  /** Where keys live (default: the session store's, else memory). */
  keyStore?: KeyStore;
}

/** Each key's limits unless it has its own, and unless the `--key-*` flags say otherwise. */
export const DEFAULT_KEY_LIMITS: ResolvedLimits = { messagesPerMinute: 600, liveSessions: 10_000, connections: 10_000, sessionsPerMinute: 600, tokensPerDay: 0 };

/** Identity and access, wired once for every surface. */
export interface Access {
  readonly keyRing: KeyRing | undefined;
  readonly auth: Authenticator;
  readonly limits: ClientLimits;
  readonly origins: OriginPolicy;
  readonly keyConnections: KeyConnections;
  readonly sessions: CallerSessions;
  /** Who opens a WebSocket (`?access_token=` allowed); under `--auth none` each new one counts against its address. */
  identifySocket(request: IncomingMessage): Promise<Caller>;
  close(): void;
}

export interface AccessOptions {
  auth: AuthOptions;
  store: SessionStore;
  /** The registry on one node; across nodes the cluster's router (see src/cluster). */
  registry: Sessions;
  /** Where the rate counters live (default in memory; across nodes Redis). */
  limiters?: LimiterFactory;
  /** The session store's health: keys kept in its database report to it. */
  health?: StoreHealth;
  admission: Admission;
  clock: Clock;
  logger: Logger;
  connRatePerIp?: number;
  connBurstPerIp?: number;
  /** The configured models: which a caller may name (its key's `limits.models`). */
  models?: ModelCatalog;
  /** Tokens spent per key: its `limits.tokensPerDay`. */
  ledger?: TokenLedger;
}

export function createAccess(options: AccessOptions): Access {
  const { auth: authOptions, store, registry, admission, clock, logger, health } = options;
  // Keys in the sessions' own database tell its health what they find (a key store given apart may live elsewhere).
  const storedKeys = store.keys && health ? keysReportingTo(health, store.keys) : store.keys;
  const keyRing =
    authOptions.mode === 'keys'
      ? createKeyRing({
          store: authOptions.keyStore ?? storedKeys ?? createMemoryKeyStore(),
          clock,
          logger,
          ...(authOptions.keyCacheMs !== undefined ? { cacheMs: authOptions.keyCacheMs } : {}),
        })
      : undefined;
  const limits = createClientLimits({
    perIpPerSecond: options.connRatePerIp,
    perIpBurst: options.connBurstPerIp,
    ...(options.limiters ? { limiters: options.limiters } : {}),
  });
  const origins = createOriginPolicy(authOptions.allowedOrigins);
  const auth = createAuthenticator({ mode: authOptions.mode, ring: keyRing, limits, origins, defaultLimits: { ...DEFAULT_KEY_LIMITS, ...authOptions.keyLimits } });
  const keyConnections = createKeyConnections();
  const unwatch = keyRing?.onRevoked((keyId) => {
    const closed = keyConnections.revoke(keyId);
    if (closed > 0) logger.info({ keyId, closed }, 'closed the connections of a revoked key');
  });
  // A key revoked by another node sharing the database: its connections here close within about this long.
  const revocationCheck = keyRing
    ? setInterval(() => {
        keyRing.checkRevoked(keyConnections.keyIds()).catch((error: unknown) => logger.warn({ err: String(error) }, 'could not check keys for revocation'));
      }, Math.max(100, authOptions.keyCacheMs ?? 1000))
    : undefined;
  revocationCheck?.unref();

  return {
    keyRing,
    auth,
    limits,
    origins,
    keyConnections,
    sessions: createCallerSessions({
      registry,
      admission,
      limits,
      ...(options.models ? { models: options.models } : {}),
      ...(options.ledger ? { ledger: options.ledger } : {}),
    }),
    async identifySocket(request) {
      const caller = await auth.identify(request, { query: true });
      if (caller.keyId === undefined) await limits.admitUnknown(clientAddressOf(request));
      return caller;
    },
    close() {
      if (revocationCheck) clearInterval(revocationCheck);
      unwatch?.();
    },
  };
}
