/**
 * The processes of the cluster bench: a redis-server of its own on a free
 * port, a throw-away PostgreSQL schema (or a shared SQLite file when
 * PostgreSQL is not there), and `src/main.ts` itself as the server, with
 * `--workers N` or as one plain process.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { SERVER_NODE_FLAGS } from './processes.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Everything started here, so an interrupted bench leaves nothing behind (see stopStarted). */
const started = new Set<ChildProcess>();
const track = (child: ChildProcess) => {
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
};

/** Stops what is still running: servers (their primary stops its workers) and redis-server. */
export function stopStarted(): void {
  for (const child of started) child.kill('SIGKILL');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface BenchRedis {
  url: string;
  client: Redis;
  /** Calls per command since start (INFO commandstats). */
  commandCalls(): Promise<Record<string, number>>;
  usedMemory(): Promise<number>;
  stop(): Promise<void>;
}

export async function startBenchRedis(): Promise<BenchRedis> {
  const port = await freePort();
  const child = track(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxclients', '10000'], { stdio: 'ignore' }));
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => 50 });
  client.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('redis-server did not start')), 5000);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
    client.connect().catch(() => {});
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    client,
    async commandCalls() {
      const info = await client.info('commandstats');
      const calls: Record<string, number> = {};
      for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1]!] = Number(match[2]);
      return calls;
    },
    async usedMemory() {
      const info = await client.info('memory');
      return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
    },
    async stop() {
      client.disconnect();
      child.kill('SIGKILL');
    },
  };
}

export interface BenchStore {
  /** Environment for the server: DATABASE_URL, STORE. */
  env: Record<string, string>;
  what: string;
  drop(): Promise<void>;
}

/** A throw-away PostgreSQL schema when the local server answers, else a SQLite file the workers share. */
export async function benchStore(sqlitePath: string): Promise<BenchStore> {
  const base = process.env['LLM_CHAT_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `llm_chat_bench_${process.pid}`;
  const client = new pg.Client({ connectionString: base, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.end();
    return {
      env: { DATABASE_URL: `${base}?options=-c%20search_path%3D${schema}`, STORE: 'postgres' },
      what: `PostgreSQL (schema ${schema})`,
      async drop() {
        const dropper = new pg.Client({ connectionString: base });
        await dropper.connect();
        await dropper.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await dropper.end();
      },
    };
  } catch {
    await client.end().catch(() => {});
    return { env: { DATABASE_URL: sqlitePath, STORE: 'sqlite' }, what: `SQLite (${sqlitePath})`, drop: async () => {} };
  }
}

export interface MainProcess {
  child: ChildProcess;
  url: string;
  port: number;
  log(): string;
  kill(): void;
}

export interface StartMainOptions {
  /** More Node flags (`--inspect=127.0.0.1:0`, say); node:cluster's workers inherit them. */
  nodeFlags?: readonly string[];
  /** Checkout whose `src/main.ts` runs (default: this one), so a run can measure another version. */
  root?: string;
}

/** `src/main.ts` with these flags; resolves once it logs that it listens (all workers up). */
export function startMain(args: readonly string[], env: Record<string, string>, options: StartMainOptions = {}): Promise<MainProcess> {
  const child = track(
    spawn(process.execPath, [...SERVER_NODE_FLAGS, ...(options.nodeFlags ?? []), '--import', 'tsx', 'src/main.ts', '--host', '127.0.0.1', '--log-format', 'json', ...args], {
      cwd: options.root ?? ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      // Never leave it (and its workers) behind: the primary stops its workers on SIGTERM.
      child.kill('SIGTERM');
      reject(new Error(`server did not start; output:\n${output.slice(-3000)}`));
    }, 120_000);
    const onData = (data: Buffer) => {
      output += data.toString();
      if (output.length > 2_000_000) output = output.slice(-1_000_000);
      const line = output.split('\n').find((text) => text.includes('"llm-chat listening"'));
      const url = line ? (JSON.parse(line) as { url?: string }).url : undefined;
      if (!url) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stderr!.off('data', onData);
      const keep = (more: Buffer) => {
        output += more.toString();
        if (output.length > 2_000_000) output = output.slice(-1_000_000);
      };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      resolve({ child, url, port: Number(new URL(url).port), log: () => output, kill: () => child.kill('SIGKILL') });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening; output:\n${output.slice(-3000)}`)));
  });
}

/** Resident memory of a process, in bytes (Linux /proc). */
export function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** CPU time (user + system) of a process (or of one of its threads) so far, in ms (Linux /proc). */
export function cpuMsOf(pid: number, thread?: number): number {
  try {
    const fields = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

/** The worker processes of a cluster, from their heartbeats in Redis: node id and pid. */
export async function workersOf(redis: Redis): Promise<{ node: string; pid: number }[]> {
  const ids = await redis.smembers('llm-chat:nodes');
  if (ids.length === 0) return [];
  const beats = await redis.mget(...ids.map((id) => `llm-chat:{n:${id}}:alive`));
  return ids.flatMap((node, index) => {
    const beat = beats[index];
    if (!beat) return [];
    return [{ node, pid: Number((JSON.parse(beat) as { pid?: number }).pid ?? 0) }];
  });
}

/** The Redis commands every live node says it issued, by kind, summed (from their heartbeats). */
export async function commandTallies(redis: Redis): Promise<Record<string, number>> {
  const ids = await redis.smembers('llm-chat:nodes');
  if (ids.length === 0) return {};
  const beats = await redis.mget(...ids.map((id) => `llm-chat:{n:${id}}:alive`));
  const total: Record<string, number> = {};
  for (const beat of beats) {
    if (!beat) continue;
    const tally = (JSON.parse(beat) as { redisCommands?: Record<string, number> }).redisCommands ?? {};
    for (const [kind, count] of Object.entries(tally)) total[kind] = (total[kind] ?? 0) + count;
  }
  return total;
}

/** Leases lost and the worst heartbeat round trip / main-loop tick lateness, over every live node (from their heartbeats). */
export async function leaseFigures(redis: Redis): Promise<{ lostMoved: number; lostUnavailable: number; heartbeatRoundTripMaxMs: number; tickLateMaxMs: number }> {
  const figures = { lostMoved: 0, lostUnavailable: 0, heartbeatRoundTripMaxMs: 0, tickLateMaxMs: 0 };
  const ids = await redis.smembers('llm-chat:nodes');
  if (ids.length === 0) return figures;
  const beats = await redis.mget(...ids.map((id) => `llm-chat:{n:${id}}:alive`));
  for (const beat of beats) {
    if (!beat) continue;
    const node = JSON.parse(beat) as { leasesLost?: { moved?: number; unavailable?: number }; heartbeatRoundTripMaxMs?: number; tickLateMaxMs?: number };
    figures.lostMoved += node.leasesLost?.moved ?? 0;
    figures.lostUnavailable += node.leasesLost?.unavailable ?? 0;
    figures.heartbeatRoundTripMaxMs = Math.max(figures.heartbeatRoundTripMaxMs, node.heartbeatRoundTripMaxMs ?? 0);
    figures.tickLateMaxMs = Math.max(figures.tickLateMaxMs, node.tickLateMaxMs ?? 0);
  }
  return figures;
}
