import { join } from 'node:path';
import type { StoreKind } from '../config.ts';
import type { SessionStore } from '../domain/ports.ts';
import { createMemoryStore } from './memoryStore.ts';
import { openPostgresStore } from './postgresStore.ts';
import { openSqliteStore } from './sqliteStore.ts';

export interface StoreChoice {
  storeKind: StoreKind;
  /** A postgres:// URL, or a SQLite file path (optionally as sqlite:PATH or file:PATH). */
  databaseUrl: string;
  /** Where the SQLite file goes when no path is given. */
  dataDir: string;
  /** PostgreSQL: a query or connection with no answer in this long fails (default 5 s). */
  storeTimeoutMs?: number;
}

const POSTGRES_URL = /^postgres(ql)?:\/\//i;

/** Opens (and migrates) the configured store; `where` says what, without credentials, for the start-up log. */
export async function openStore(choice: StoreChoice): Promise<{ store: SessionStore; kind: Exclude<StoreKind, 'auto'>; where: string }> {
  const kind = choice.storeKind === 'auto' ? (POSTGRES_URL.test(choice.databaseUrl) ? 'postgres' : 'sqlite') : choice.storeKind;
  switch (kind) {
    case 'memory':
      return { store: createMemoryStore(), kind, where: 'process memory (lost on restart)' };
    case 'postgres': {
      if (!POSTGRES_URL.test(choice.databaseUrl)) throw new Error('--store postgres needs DATABASE_URL (or --database-url) set to a postgres:// URL.');
      const url = new URL(choice.databaseUrl);
      return {
        store: await openPostgresStore({
          connectionString: choice.databaseUrl,
          ...(choice.storeTimeoutMs !== undefined ? { timeoutMs: choice.storeTimeoutMs } : {}),
        }),
        kind,
        where: `${url.hostname}:${url.port || 5432}${url.pathname}`,
      };
    }
    case 'sqlite': {
      if (POSTGRES_URL.test(choice.databaseUrl)) throw new Error('--store sqlite was given a postgres:// DATABASE_URL.');
      const path = choice.databaseUrl.replace(/^(sqlite|file):(\/\/)?/, '') || join(choice.dataDir, 'llm-chat.sqlite');
      return { store: openSqliteStore({ path }), kind, where: path };
    }
  }
}
