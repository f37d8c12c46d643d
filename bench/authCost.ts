/**
 * What an authentication check costs (`npm run bench -- --scenario auth`):
 * - µs per check, in-process: the authenticator on a valid key while it is
 *   cached (the usual case), the same key looked up in each store on every
 *   check (the cache off), a wrong key, and `--auth none`;
 * - the request rate of `GET /api/sessions/:id` against a server process
 *   with `--auth none` and with `--auth keys`, from keep-alive clients in
 *   this process.
 */
import { Agent, request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeyRing } from '../src/actors/keyRing.ts';
import type { KeyStore } from '../src/domain/apiKeys.ts';
import type { SessionStore } from '../src/domain/ports.ts';
import { createMemoryKeyStore } from '../src/infra/memoryKeyStore.ts';
import { openPostgresStore } from '../src/infra/postgresStore.ts';
import { silentLogger } from '../src/infra/silentLogger.ts';
import { openSqliteStore } from '../src/infra/sqliteStore.ts';
import { systemClock } from '../src/infra/systemClock.ts';
import { DEFAULT_KEY_LIMITS } from '../src/server.ts';
import { createAuthenticator } from '../src/transport/authenticate.ts';
import type { AuthMode } from '../src/transport/authenticate.ts';
import { createClientLimits } from '../src/transport/clientLimits.ts';
import { createOriginPolicy } from '../src/transport/origins.ts';
import { startServer } from './processes.ts';
import { percentile } from './stats.ts';

export interface AuthCostConfig {
  /** Checks per in-process measurement. */
  checks: number;
  /** Seconds of load per server mode. */
  seconds: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** A PostgreSQL URL to measure a lookup there too; undefined: skipped. */
  postgresUrl: string | undefined;
}

export interface AuthCostResult {
  microsecondsPerCheck: Record<string, number>;
  requestsPerSecond: { none: number; keys: number };
  /** Server CPU (user + system) per request. */
  cpuMicrosPerRequest: { none: number; keys: number };
  latencyMs: { none: { p50: number; p99: number }; keys: { p50: number; p99: number } };
}

const fakeRequest = (authorization: string | undefined): IncomingMessage =>
  ({ headers: { host: 'bench.local', ...(authorization ? { authorization } : {}) }, url: '/api/sessions', socket: { remoteAddress: '127.0.0.9' } }) as unknown as IncomingMessage;

/** µs per `identify` call, run one after another (as the event loop would); the median of five rounds. */
async function perCheck(mode: AuthMode, keys: KeyStore, offered: 'valid' | 'wrong', cacheMs: number, checks: number): Promise<number> {
  const ring = createKeyRing({ store: keys, clock: systemClock, logger: silentLogger, cacheMs });
  const { key } = await ring.create({ name: 'bench' });
  const auth = createAuthenticator({
    mode,
    ring,
    limits: createClientLimits({ perIpPerSecond: 0 }),
    origins: createOriginPolicy(),
    defaultLimits: DEFAULT_KEY_LIMITS,
  });
  const presented = fakeRequest(`Bearer ${offered === 'valid' ? key : `llmc_${'b'.repeat(43)}`}`);
  const once = () => auth.identify(presented).catch(() => undefined);
  for (let i = 0; i < Math.min(5000, checks); i += 1) await once();
  const rounds: number[] = [];
  const perRound = Math.max(1, Math.floor(checks / 5));
  for (let round = 0; round < 5; round += 1) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < perRound; i += 1) await once();
    rounds.push(Number(process.hrtime.bigint() - started) / 1000 / perRound);
  }
  return percentile(rounds, 50);
}

async function hammer(port: number, path: string, headers: Record<string, string>, seconds: number, concurrency: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let done = 0;
  const until = Date.now() + seconds * 1000;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const started = performance.now();
      const outgoing = request({ host: '127.0.0.1', port, path, agent, headers }, (response) => {
        response.resume();
        response.on('end', () => {
          if (response.statusCode !== 200) reject(new Error(`HTTP ${response.statusCode}`));
          latencies.push(performance.now() - started);
          done += 1;
          resolve();
        });
      });
      outgoing.on('error', reject);
      outgoing.end();
    });
  const loop = async () => {
    while (Date.now() < until) await one();
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  return { perSecond: done / elapsed, requests: done, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/** One server process per mode; a session with some history; keep-alive clients reading it. */
async function requestRate(mode: AuthMode, seconds: number, concurrency: number) {
  const adminToken = 'bench-admin-token-0123456789';
  const server = await startServer('llm-chat', { auth: { mode, adminToken }, messagesPerMinute: 0, shedLagMs: 0, simIntervalMs: 0 });
  try {
    const base = `http://127.0.0.1:${server.port}`;
    let headers: Record<string, string> = {};
    if (mode === 'keys') {
      const created = (await (
        await fetch(`${base}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: '{"name":"bench"}' })
      ).json()) as { key: string };
      headers = { authorization: `Bearer ${created.key}` };
    }
    const { sessionId } = (await (await fetch(`${base}/api/sessions`, { method: 'POST', headers })).json()) as { sessionId: string };
    for (const text of ['hello', 'and again']) {
      await fetch(`${base}/api/sessions/${sessionId}/messages`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ text }) });
    }
    await hammer(server.port, `/api/sessions/${sessionId}`, headers, Math.min(1, seconds), concurrency); // warm up
    // Server CPU per request holds up better than the rate on a machine other work also loads.
    const before = await server.stats();
    const result = await hammer(server.port, `/api/sessions/${sessionId}`, headers, seconds, concurrency);
    const after = await server.stats();
    return { ...result, cpuMicrosPerRequest: ((after.cpuMs - before.cpuMs) * 1000) / result.requests };
  } finally {
    await server.stop();
  }
}

export async function runAuthCost(config: AuthCostConfig, log: (line: string) => void): Promise<AuthCostResult> {
  const micro: Record<string, number> = {};
  log(`auth: ${config.checks} checks per case, in-process`);
  micro['none (origin check only)'] = await perCheck('none', createMemoryKeyStore(), 'valid', 1000, config.checks);
  micro['valid key, cached'] = await perCheck('keys', createMemoryKeyStore(), 'valid', 1000, config.checks);
  micro['valid key, memory store lookup'] = await perCheck('keys', createMemoryKeyStore(), 'valid', 0, config.checks);
  const directory = mkdtempSync(join(tmpdir(), 'llm-chat-authcost-'));
  const stores: SessionStore[] = [];
  try {
    const sqlite = openSqliteStore({ path: join(directory, 'keys.sqlite') });
    stores.push(sqlite);
    micro['valid key, SQLite lookup'] = await perCheck('keys', sqlite.keys!, 'valid', 0, config.checks);
    micro['wrong key (SQLite lookup, 401)'] = await perCheck('keys', sqlite.keys!, 'wrong', 0, config.checks);
    if (config.postgresUrl) {
      const schema = `llm_chat_authcost_${process.pid}`;
      const postgres = await openPostgresStore({ connectionString: config.postgresUrl, schema }).catch((error: unknown) => {
        log(`auth: PostgreSQL skipped (${String(error)})`);
        return undefined;
      });
      if (postgres) {
        stores.push(postgres);
        micro['valid key, PostgreSQL lookup'] = await perCheck('keys', postgres.keys!, 'valid', 0, Math.min(config.checks, 5000));
        const { default: pg } = await import('pg');
        const client = new pg.Client({ connectionString: config.postgresUrl });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await client.end();
      }
    }
  } finally {
    for (const store of stores) await store.close();
    rmSync(directory, { recursive: true, force: true });
  }
  log(`auth: GET /api/sessions/:id for ${config.seconds} s per mode and round, ${config.concurrency} requests in flight, modes alternated over 3 rounds`);
  const runs: Record<AuthMode, Awaited<ReturnType<typeof requestRate>>[]> = { none: [], keys: [] };
  for (let round = 0; round < 3; round += 1) {
    for (const mode of round % 2 === 0 ? (['none', 'keys'] as const) : (['keys', 'none'] as const)) runs[mode].push(await requestRate(mode, config.seconds, config.concurrency));
  }
  // The median round of each mode, by rate.
  const median = (list: Awaited<ReturnType<typeof requestRate>>[]) => [...list].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(list.length / 2)]!;
  const none = median(runs.none);
  const keys = median(runs.keys);
  return {
    microsecondsPerCheck: micro,
    requestsPerSecond: { none: none.perSecond, keys: keys.perSecond },
    cpuMicrosPerRequest: { none: percentile(runs.none.map((run) => run.cpuMicrosPerRequest), 50), keys: percentile(runs.keys.map((run) => run.cpuMicrosPerRequest), 50) },
    latencyMs: { none: { p50: none.p50, p99: none.p99 }, keys: { p50: keys.p50, p99: keys.p99 } },
  };
}
