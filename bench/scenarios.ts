/**
 * The load scenarios of `npm run bench`, each run against one server (ours
 * or the bare-ws baseline) and returning its raw figures; bench/run.ts
 * reads the command line and prints the comparison.
 */
import type { ClientKind } from './clients.ts';
import { Child, quietDown, startGenerators, startServer, SERVER_NODE_FLAGS } from './processes.ts';
import type { ServerKind, ServerUnderTest } from './processes.ts';
import { SOCKET_IO_PATH } from './socketIoServer.ts';
import { formatNumber, summarize } from './stats.ts';

export interface BenchConfig {
  actors: number;
  idleSessions: number;
  holdSeconds: number;
  streamSessions: number;
  messages: number;
  spreadMs: number;
  burstSessions: number;
  sustainedSessions: number;
  /** Sessions of another fleet that stream one reply each before a measured stream run (0: none). */
  warmUpSessions: number | undefined;
  saturateSessions: number;
  durationSeconds: number;
  churn: number;
  rate: number;
  perGenerator: number;
  url: URL | undefined;
}

export interface ScenarioContext {
  config: BenchConfig;
  log: (line: string) => void;
  /** Every process started, so the run can kill them all when it ends. */
  children: Child[];
  servers: ServerUnderTest[];
}

const KB = 1024;

/** One run of the stream scenario: how many sessions, replies each, and how spread their first messages are. */
export interface StreamShape {
  sessions: number;
  messages: number;
  spreadMs: number;
}

export function createScenarios({ config, log, children, servers }: ScenarioContext) {
  async function inProcess(mode: 'activation' | 'churn', sessions: number): Promise<Record<string, number>> {
    const child = new Child('./actors.ts', { args: ['--mode', mode, '--sessions', String(sessions)], nodeFlags: SERVER_NODE_FLAGS });
    children.push(child);
    child.onProgress = (message) => log(`  churn ${formatNumber(Number(message['created']))}/${formatNumber(Number(message['total']))}, RSS ${formatNumber(Number(message['rssMB']))} MB`);
    const result = await child.next('result', 1_500_000);
    return result['result'] as Record<string, number>;
  }

  interface Fleet {
    generators: Awaited<ReturnType<typeof startGenerators>>;
    ok: number;
    failed: number;
    errors: Record<string, number>;
  }

  async function connectFleet(server: ServerUnderTest, sessions: number): Promise<Fleet> {
    const client: ClientKind = server.kind === 'socketio' ? 'socketio' : 'ws';
    const url = config.url ? config.url.href : `ws://127.0.0.1:${server.port}${server.kind === 'socketio' ? SOCKET_IO_PATH : '/ws'}`;
    const count = Math.max(1, Math.ceil(sessions / config.perGenerator));
    const generators = await startGenerators(count);
    children.push(...generators.map(({ child }) => child));
    const progress = new Map<Child, number>();
    for (const { child } of generators) {
      child.onProgress = (message) => {
        progress.set(child, Number(message['ok'] ?? message['completed'] ?? 0));
      };
    }
    const ticker = setInterval(() => log(`  connected ${[...progress.values()].reduce((a, b) => a + b, 0)}/${sessions}`), 2000);
    const results = await Promise.all(
      generators.map(({ child, address }, index) => {
        const share = Math.floor(sessions / count) + (index < sessions % count ? 1 : 0);
        return child.ask(
          { type: 'connect', url, client, count: share, ratePerSecond: config.rate / count, localAddress: address },
          'connected',
        );
      }),
    );
    clearInterval(ticker);
    const errors: Record<string, number> = {};
    for (const result of results) {
      for (const [code, n] of Object.entries(result['errors'] as Record<string, number>)) errors[code] = (errors[code] ?? 0) + n;
    }
    return {
      generators,
      ok: results.reduce((sum, result) => sum + Number(result['ok']), 0),
      failed: results.reduce((sum, result) => sum + Number(result['failed']), 0),
      errors,
    };
  }

  async function closeFleet(fleet: Fleet): Promise<number> {
    const replies = await Promise.all(fleet.generators.map(({ child }) => child.ask({ type: 'close' }, 'closed')));
    for (const { child } of fleet.generators) child.kill();
    return replies.reduce((sum, reply) => sum + Number(reply['alive'] ?? 0), 0);
  }

  /** With --url, the server under test is somebody else's: no stats, nothing to stop. */
  async function serverFor(kind: ServerKind, options: Record<string, unknown>): Promise<ServerUnderTest> {
    if (config.url) {
      const zero = { cpuMs: Number.NaN, mainThreadCpuMs: Number.NaN, storeThreadsCpuMs: Number.NaN, gcPauseMs: Number.NaN, rss: 0, heapUsed: 0, activeSessions: 0, lagP50Ms: Number.NaN, lagP99Ms: Number.NaN, lagMaxMs: Number.NaN };
      return { kind, port: Number(config.url.port || 80), stats: async () => zero, stop: async () => {} };
    }
    const server = await startServer(kind, options);
    servers.push(server);
    return server;
  }

  const serverOptions = (extra: Record<string, unknown> = {}) => ({
    connRatePerIp: 0, // the load comes from a handful of loopback addresses
    messagesPerMinute: 0,
    maxSessions: 0,
    // Load shedding would refuse the very load being measured (on a shared
    // machine the event loop lags for reasons of its own); the peers shed nothing.
    shedLagMs: 0,
    ...extra,
  });

  async function idle(kind: ServerKind) {
    const server = await serverFor(kind, serverOptions());
    const before = await server.stats(true);
    log(`${kind}: opening ${config.idleSessions} idle sessions`);
    const fleet = await connectFleet(server, config.idleSessions);
    log(`${kind}: holding ${fleet.ok} sessions for ${config.holdSeconds} s`);
    await server.stats(); // reset the lag window
    await new Promise((resolve) => setTimeout(resolve, config.holdSeconds * 1000));
    const held = await server.stats(true);
    if (Object.keys(fleet.errors).length > 0) log(`${kind}: connection errors ${JSON.stringify(fleet.errors)}`);
    const alive = await closeFleet(fleet);
    await server.stop();
    return {
      opened: fleet.ok,
      failed: fleet.failed,
      errors: fleet.errors,
      aliveAtEnd: alive,
      rssPerSessionKB: (held.rss - before.rss) / Math.max(1, fleet.ok) / KB,
      heapPerSessionKB: (held.heapUsed - before.heapUsed) / Math.max(1, fleet.ok) / KB,
      lagP99Ms: held.lagP99Ms,
    };
  }

  async function streamRun(kind: ServerKind, shape: StreamShape) {
    const intervalMs = 400;
    const { sessions, messages, spreadMs } = shape;
    const server = await serverFor(kind, serverOptions({ simIntervalMs: intervalMs, simChunks: 5 }));
    const before = await server.stats(true);
    log(`${kind}: opening ${sessions} sessions`);
    const fleet = await connectFleet(server, sessions);
    // Memory per open connection (and its session), collected: what each one keeps.
    const connected = await server.stats(true);
    // After the memory figures: the warm-up's garbage would be reused by what they count.
    // As many as it will measure: after a 2,000-session warm-up a 5,000-session burst still met
    // 166 TurboFan compiles (1.0 s of compiler threads) and 69 deopts; after 5,000, 96 and 59,
    // most of those in the fleets' teardown after the figures were taken.
    const warmUp = config.warmUpSessions ?? Math.min(sessions, 5_000);
    if (warmUp > 0) {
      log(`${kind}: warming up: ${warmUp} other sessions stream one reply each (not measured)`);
      const warm = await connectFleet(server, warmUp);
      await Promise.all(warm.generators.map(({ child }) => child.ask({ type: 'stream', messages: 1, intervalMs, spreadMs: 0, timeoutMs: 120_000 }, 'streamed')));
      await closeFleet(warm);
      // Its teardown and the JIT's compiles are not the measured burst's (every peer alike).
      log(`${kind}: quiet after the warm-up in ${await quietDown(server)} ms`);
    }
    const streamStart = await server.stats(); // also resets the lag window
    log(`${kind}: ${fleet.ok} sessions stream ${messages} message(s) each, first ones within ${spreadMs} ms`);
    const pending = Promise.all(
      fleet.generators.map(({ child }) =>
        child.ask(
          { type: 'stream', messages, intervalMs, spreadMs, timeoutMs: 60_000 + spreadMs + messages * 5 * intervalMs * 4 },
          'streamed',
        ),
      ),
    );
    // Memory while every session is mid-reply (no GC forced: what the OS sees).
    await new Promise((resolve) => setTimeout(resolve, spreadMs + 2.5 * intervalMs));
    const during = await server.stats();
    const results = await pending;
    const after = await server.stats();
    if (Object.keys(fleet.errors).length > 0) log(`${kind}: connection errors ${JSON.stringify(fleet.errors)}`);
    await closeFleet(fleet);
    await server.stop();
    const errorFrames: Record<string, number> = {};
    for (const result of results) {
      for (const [code, count] of Object.entries(result['errors'] as Record<string, number>)) errorFrames[code] = (errorFrames[code] ?? 0) + count;
    }
    if (Object.keys(errorFrames).length > 0) log(`${kind}: error frames ${JSON.stringify(errorFrames)}`);
    const ttfc = summarize(results.flatMap((result) => result['ttfc'] as number[]));
    const accepted = summarize(results.flatMap((result) => result['accepted'] as number[]));
    const full = summarize(results.flatMap((result) => result['full'] as number[]));
    const lateness = summarize(results.flatMap((result) => result['lateness'] as number[]));
    const chunks = results.reduce((sum, result) => sum + Number(result['chunks']), 0);
    const elapsed = Math.max(...results.map((result) => Number(result['elapsedMs'])));
    const completed = results.reduce((sum, result) => sum + Number(result['completed']), 0);
    return {
      sessions: fleet.ok,
      failed: fleet.failed,
      completed,
      expected: results.reduce((sum, result) => sum + Number(result['expected']), 0),
      ttfcP50Ms: ttfc.p50,
      ttfcP99Ms: ttfc.p99,
      acceptedP50Ms: accepted.p50,
      acceptedP99Ms: accepted.p99,
      ttfcMaxMs: ttfc.max,
      fullP50Ms: full.p50,
      fullP99Ms: full.p99,
      latenessP50Ms: lateness.p50,
      latenessP99Ms: lateness.p99,
      chunksPerSecond: chunks / (elapsed / 1000),
      totalSeconds: elapsed / 1000,
      lagP99Ms: Math.max(during.lagP99Ms, after.lagP99Ms),
      // (what the warm-up left is not the streaming sessions')
      rssPerSessionStreamingKB: (connected.rss - before.rss + during.rss - streamStart.rss) / Math.max(1, fleet.ok) / KB,
      rssPerConnectionKB: (connected.rss - before.rss) / Math.max(1, fleet.ok) / KB,
      heapPerConnectionKB: (connected.heapUsed - before.heapUsed) / Math.max(1, fleet.ok) / KB,
      cpuMsPerReply: (after.cpuMs - streamStart.cpuMs) / Math.max(1, completed),
      mainThreadCpuMsPerReply: (after.mainThreadCpuMs - streamStart.mainThreadCpuMs) / Math.max(1, completed),
      storeThreadsCpuMsPerReply: (after.storeThreadsCpuMs - streamStart.storeThreadsCpuMs) / Math.max(1, completed),
      gcPauseMsPerReply: (after.gcPauseMs - streamStart.gcPauseMs) / Math.max(1, completed),
    };
  }

  async function saturateRun(kind: ServerKind) {
    const server = await serverFor(kind, serverOptions({ simIntervalMs: 0, simChunks: 5 }));
    const fleet = await connectFleet(server, config.saturateSessions);
    log(`${kind}: ${fleet.ok} sessions send back to back for ${config.durationSeconds} s`);
    const before = await server.stats();
    const results = await Promise.all(
      fleet.generators.map(({ child }) => child.ask({ type: 'saturate', durationMs: config.durationSeconds * 1000 }, 'saturated')),
    );
    const stats = await server.stats();
    await closeFleet(fleet);
    await server.stop();
    const chunks = results.reduce((sum, result) => sum + Number(result['chunks']), 0);
    const elapsed = Math.max(...results.map((result) => Number(result['elapsedMs'])));
    // Whether the server was the limit: each thread's share of the wall time (a main
    // thread near 100% is CPU-bound; well under, it waits: on the writer thread, a round
    // trip, or a core the load generators hold).
    return {
      sessions: fleet.ok,
      chunksPerSecond: chunks / (elapsed / 1000),
      lagP99Ms: stats.lagP99Ms,
      cpuUsPerChunk: ((stats.cpuMs - before.cpuMs) * 1000) / Math.max(1, chunks),
      mainThreadBusyShare: (stats.mainThreadCpuMs - before.mainThreadCpuMs) / Math.max(1, elapsed),
      storeThreadsBusyShare: (stats.storeThreadsCpuMs - before.storeThreadsCpuMs) / Math.max(1, elapsed),
    };
  }

  return { inProcess, idle, stream: streamRun, saturate: saturateRun };
}
