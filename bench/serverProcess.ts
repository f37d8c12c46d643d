/**
 * A server under test, in its own process, so its memory and event loop are
 * measured alone. Forked by bench/run.ts: BENCH_KIND is `llm-chat`,
 * `baseline` (bare ws) or `socketio`; BENCH_STORE is llm-chat's store
 * (`sqlite`, the default, in BENCH_DATA_DIR, which the orchestrator makes
 * and removes, or `memory`); BENCH_OPTIONS the server options as JSON.
 * Talks over IPC.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { openStore } from '../src/infra/openStore.ts';
import { silentLogger } from '../src/infra/silentLogger.ts';
import { createChatServer } from '../src/server.ts';
import type { ChatServerOptions } from '../src/server.ts';
import { createBaselineServer } from './baselineServer.ts';
import { createSocketIoServer } from './socketIoServer.ts';

const kind = process.env['BENCH_KIND'] ?? 'llm-chat';
const storeKind = process.env['BENCH_STORE'] === 'memory' ? 'memory' : 'sqlite';
const options = JSON.parse(process.env['BENCH_OPTIONS'] ?? '{}') as ChatServerOptions;
const send = (message: unknown) => process.send?.(message);
const gc = (globalThis as { gc?: () => void }).gc;

const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();

// The main thread's stop-the-world GC pauses (V8's helper threads work beside it, counted only in the process's CPU).
let gcPauseMs = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcPauseMs += entry.duration;
}).observe({ entryTypes: ['gc'] });

/** CPU time (user + system) of one of this process's threads, in ms (Linux /proc; NaN elsewhere, 0 once it has ended). */
function threadCpuMs(tid: number): number {
  try {
    const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch (error) {
    return (error as { code?: string }).code === 'ENOENT' && process.platform === 'linux' ? 0 : Number.NaN;
  }
}
const mainThreadCpuMs = () => threadCpuMs(process.pid);

/** This process's threads now (Linux; none elsewhere). */
function threadIds(): number[] {
  try {
    return readdirSync('/proc/self/task').map(Number);
  } catch {
    return [];
  }
}
// The threads the store starts (SQLite's writer): those that appear while it opens.
let storeThreads: number[] = [];
const storeThreadsCpuMs = () => (process.platform === 'linux' ? storeThreads.reduce((sum, tid) => sum + threadCpuMs(tid), 0) : Number.NaN);

let activeSessions = () => 0;
let close: () => Promise<void>;
let port: number;

const listenPlain = async (server: Server) => {
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
  return (server.address() as AddressInfo).port;
};
const closePlain = (server: Server) => () =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

if (kind === 'baseline') {
  const server = createBaselineServer(options);
  port = await listenPlain(server);
  close = closePlain(server);
} else if (kind === 'socketio') {
  const { http, io } = createSocketIoServer(options);
  port = await listenPlain(http);
  close = async () => {
    await io.close();
    await closePlain(http)();
  };
} else {
  const dataDir = process.env['BENCH_DATA_DIR'];
  if (storeKind === 'sqlite' && !dataDir) throw new Error('BENCH_DATA_DIR is needed for the sqlite store');
  const before = new Set(threadIds());
  const { store } = await openStore({ storeKind, databaseUrl: '', dataDir: dataDir ?? '' });
  storeThreads = threadIds().filter((tid) => !before.has(tid));
  // No API keys: the load figures are the hot path's (bench/authCost.ts prices the keys).
  const server = createChatServer({ auth: { mode: 'none' }, ...options, store, logger: silentLogger });
  port = (await server.listen(0, '127.0.0.1')).port;
  activeSessions = () => server.registry.activeCount;
  close = () => server.close();
}

process.on('message', (message: { type: string; gc?: boolean }) => {
  if (message.type === 'stats') {
    if (message.gc && gc) {
      gc();
      gc();
    }
    const memory = process.memoryUsage();
    const cpu = process.cpuUsage();
    send({
      cpuMs: (cpu.user + cpu.system) / 1000,
      mainThreadCpuMs: mainThreadCpuMs(),
      storeThreadsCpuMs: storeThreadsCpuMs(),
      gcPauseMs,
      type: 'stats',
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      activeSessions: activeSessions(),
      lagP50Ms: lag.percentile(50) / 1e6,
      lagP99Ms: lag.percentile(99) / 1e6,
      lagMaxMs: lag.max / 1e6,
    });
    lag.reset();
  } else if (message.type === 'exit') {
    void close().finally(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', port });
