/**
 * `npm run bench -- --scenario cluster`: N WebSocket sessions (default
 * 100,000) on one port served by `--workers W` processes (default 6) sharing
 * a Redis of the bench's own and one store, a fraction of them (10%)
 * streaming at a time; then the same streaming load on one plain process;
 * then cancel and delete from whichever worker takes the request, and a
 * worker killed with SIGKILL.
 */
import { timedRequest } from './timedRequest.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { createClusterFleet } from './clusterFleet.ts';
import type { Fleet } from './clusterFleet.ts';
import type { Child } from './processes.ts';
import { benchStore, commandTallies, cpuMsOf, leaseFigures, rssOf, startBenchRedis, startMain, workersOf } from './clusterProcesses.ts';
import type { BenchRedis, MainProcess } from './clusterProcesses.ts';
import { summarize } from './stats.ts';

export interface ClusterBenchConfig {
  sessions: number;
  workers: number;
  fraction: number;
  leaseMs: number;
  rate: number;
  perGenerator: number;
  killSample: number;
  baseline: boolean;
}

const KB = 1024;

export function createClusterBench(config: ClusterBenchConfig, log: (line: string) => void, children: Child[]) {
  const { connectFleet, closeFleet, streamPhase } = createClusterFleet(config, log, children);

  const serverArgs = (extra: string[]) => [
    '--port', '0',
    // The load comes without API keys (their cost is the 'auth' scenario's).
    '--auth', 'none',
    '--sim-interval-ms', '400',
    '--sim-chunks', '5',
    '--conn-rate-per-ip', '0',
    '--messages-per-minute', '0',
    '--max-sessions', '0',
    // Capacity is what is measured here: refusing under lag would hide it.
    '--shed-lag-ms', '0',
    // info: the start-up line says where it listens; nothing is logged per request at info.
    '--log-level', 'info',
    '--no-inspector',
    ...extra,
  ];

  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

  /** SIGTERM (drain), then SIGKILL if it has not exited within `ms`: the run never waits on a stuck drain. */
  async function stopWithin(server: MainProcess, ms: number) {
    if (server.child.exitCode !== null || server.child.signalCode !== null) return;
    const exited = new Promise((resolve) => server.child.once('exit', resolve));
    server.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), ms);
    });
    if ((await Promise.race([exited, late])) === 'late') {
      log(`cluster: the server did not stop within ${ms} ms of SIGTERM; killing it`);
      server.kill();
      await exited;
    }
    clearTimeout(timer);
  }

  async function cancelAndDelete(port: number, fleet: Fleet) {
    const ids = (await Promise.all(fleet.generators.map(({ child }) => child.ask({ type: 'ids', limit: 40 }, 'ids')))).flatMap((reply) => reply['ids'] as string[]);
    const cancels: number[] = [];
    const deletes: number[] = [];
    const sample = ids.slice(0, 200);
    for (const [index, sessionId] of sample.entries()) {
      if (index % 2 === 0) {
        const sent = await timedRequest(port, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'to cancel' });
        if (sent.status !== 202) continue;
        const cancelled = await timedRequest(port, 'POST', `/api/sessions/${sessionId}/cancel`);
        if (cancelled.status === 200) cancels.push(cancelled.ms);
      } else {
        const removed = await timedRequest(port, 'DELETE', `/api/sessions/${sessionId}`);
        if (removed.status === 204) deletes.push(removed.ms);
      }
    }
    return { cancel: summarize(cancels), delete: summarize(deletes) };
  }

  async function killWorker(port: number, redis: Redis, server: MainProcess) {
    const workers = await workersOf(redis);
    const victim = workers[0];
    if (!victim) throw new Error('no worker found in Redis');
    // The victim's sessions: their leases name it.
    const owned: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', 'llm-chat:{s:*}:lease', 'COUNT', 2000);
      cursor = next;
      if (keys.length === 0) continue;
      const values = await redis.mget(...keys);
      for (const [index, value] of values.entries()) {
        if (value?.startsWith(`${victim.node} `)) owned.push(/\{s:([^}]+)\}/.exec(keys[index]!)![1]!);
      }
    } while (cursor !== '0' && owned.length < config.killSample * 5);
    const sample = owned.slice(0, config.killSample);
    log(`cluster: kill -9 worker ${victim.node} (pid ${victim.pid}), ${owned.length}+ sessions; timing ${sample.length} of them`);
    process.kill(victim.pid, 'SIGKILL');
    const killedAt = performance.now();
    const servedAfter: number[] = [];
    let failures = 0;
    const next = [...sample];
    // The phase's own bound: a session not served by then counts as a failure (before, 40 tries of
    // up to 3 s each per session could hold the run until --max-seconds).
    const giveUpAt = killedAt + config.leaseMs + 30_000;
    await Promise.all(
      Array.from({ length: 25 }, async () => {
        for (let sessionId = next.shift(); sessionId !== undefined; sessionId = next.shift()) {
          if (performance.now() > giveUpAt) {
            failures += 1;
            continue;
          }
          for (let attempt = 0; attempt < 40; attempt += 1) {
            if (performance.now() > giveUpAt) {
              failures += 1;
              break;
            }
            // A client's own timeout: a connection the primary handed to the dying worker is lost, as with any crash.
            const sent = await timedRequest(port, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'after the kill' }, 3000);
            if (sent.status === 202) {
              servedAfter.push(performance.now() - killedAt);
              break;
            }
            if (attempt === 39) failures += 1;
            await sleep(50);
          }
        }
      }),
    );
    await sleep(2000);
    const replaced = server.log().includes('worker died; starting another');
    return { victim: victim.node, timed: sample.length, failures, servedAfter: summarize(servedAfter), replaced };
  }

  async function run() {
    const directory = mkdtempSync(join(tmpdir(), 'llm-chat-cluster-bench-'));
    const redis: BenchRedis = await startBenchRedis();
    const store = await benchStore(join(directory, 'bench.sqlite'));
    let server: MainProcess | undefined;
    try {
      log(`cluster: ${config.workers} workers, Redis ${redis.url}, store ${store.what}`);
      server = await startMain(serverArgs(['--workers', String(config.workers), '--lease-ms', String(config.leaseMs)]), { ...store.env, REDIS_URL: redis.url });
      await sleep(2000);
      const workers = await workersOf(redis.client);
      const pids = () => workers.map((worker) => worker.pid);
      const rssBefore = sum(pids().map(rssOf));
      const redisBefore = await redis.usedMemory();
      log(`cluster: opening ${config.sessions} sessions over ${workers.length} workers`);
      const fleet = await connectFleet(server.port, config.sessions);
      if (Object.keys(fleet.errors).length > 0) log(`cluster: connection errors ${JSON.stringify(fleet.errors)}`);
      await sleep(5000); // heartbeats and leases settle
      const rssHeld = sum(pids().map(rssOf));
      const redisHeld = await redis.usedMemory();
      // The background: lease renewals and heartbeats of idle sessions.
      const idleCalls0 = sum(Object.values(await redis.commandCalls()));
      const idleCpu0 = sum(pids().map((pid) => cpuMsOf(pid)));
      await sleep(5000);
      const idleCallsPerSecond = (sum(Object.values(await redis.commandCalls())) - idleCalls0) / 5;
      const idleCpuMsPerSecond = (sum(pids().map((pid) => cpuMsOf(pid))) - idleCpu0) / 5;
      const calls0 = await redis.commandCalls();
      const tally0 = await commandTallies(redis.client);
      const cpu0 = sum(pids().map((pid) => cpuMsOf(pid)));
      let redisStreaming = redisHeld;
      log(`cluster: ${Math.round(config.fraction * 100)}% of ${fleet.ok} sessions stream one reply each (5 chunks x 400 ms, starts spread over 2 s)`);
      const streamed = await streamPhase(fleet, config.fraction, async () => {
        redisStreaming = await redis.usedMemory();
      });
      const calls1 = await redis.commandCalls();
      // The next heartbeats carry the tallies: the description is handed to the heartbeat thread every
      // third of a lease and sent with the beat after that.
      await sleep(config.leaseMs + 500);
      const tally1 = await commandTallies(redis.client);
      const leases = await leaseFigures(redis.client);
      const issued = (kind: string) => (tally1[kind] ?? 0) - (tally0[kind] ?? 0);
      const cpuPerReply = (sum(pids().map((pid) => cpuMsOf(pid))) - cpu0) / Math.max(1, streamed.completed);
      const totalCalls = sum(Object.values(calls1)) - sum(Object.values(calls0));
      const evalsha = (calls1['evalsha'] ?? 0) - (calls0['evalsha'] ?? 0);
      const streamingCalls = totalCalls - idleCallsPerSecond * (streamed.elapsedMs / 1000);
      log('cluster: cancel and delete through the shared port (any worker; most are routed to the owner)');
      const commands = await cancelAndDelete(server.port, fleet);
      const killed = await killWorker(server.port, redis.client, server);
      const alive = await closeFleet(fleet);
      if (process.env['BENCH_SERVER_LOG']) (await import('node:fs')).writeFileSync(process.env['BENCH_SERVER_LOG'], server.log());
      await stopWithin(server, 30_000);
      server = undefined;

      let single: Awaited<ReturnType<typeof streamPhase>> | undefined;
      let singleHeld = 0;
      if (config.baseline) {
        // The same streaming load on one process (as many idle connections as its open files allow).
        const streamingSessions = streamed.streaming;
        const held = Math.min(config.sessions, 18_000, Math.max(streamingSessions, 1));
        log(`single process: ${held} sessions, ${streamingSessions} of them stream`);
        server = await startMain(serverArgs([]), { ...store.env, REDIS_URL: '', WORKERS: '1' });
        const singleFleet = await connectFleet(server.port, held);
        singleHeld = singleFleet.ok;
        single = await streamPhase(singleFleet, Math.min(1, streamingSessions / Math.max(1, singleFleet.ok)));
        await closeFleet(singleFleet);
        await stopWithin(server, 30_000);
        server = undefined;
      }
      return {
        workers: workers.length,
        store: store.what,
        sessions: config.sessions,
        held: fleet.ok,
        failed: fleet.failed,
        retried: fleet.retried,
        errors: fleet.errors,
        aliveAtEndAfterKill: alive,
        rssPerConnectionKB: (rssHeld - rssBefore) / Math.max(1, fleet.ok) / KB,
        rssTotalMB: rssHeld / KB / KB,
        redisPerSessionBytes: (redisHeld - redisBefore) / Math.max(1, fleet.ok),
        redisPerStreamingSessionBytes: (redisStreaming - redisHeld) / Math.max(1, streamed.streaming),
        idleRedisCallsPerSecond: idleCallsPerSecond,
        idleCpuMsPerSecond,
        streamed,
        redisCommandsPerChunk: totalCalls / Math.max(1, streamed.chunks),
        redisCommandsPerChunkStreaming: streamingCalls / Math.max(1, streamed.chunks),
        evalshaPerChunk: evalsha / Math.max(1, streamed.chunks),
        publishesPerChunk: issued('publish') / Math.max(1, streamed.chunks),
        leaseCommandsPerChunk: issued('lease') / Math.max(1, streamed.chunks),
        issuedPerChunk: Object.keys(tally1).reduce((total, kind) => total + issued(kind), 0) / Math.max(1, streamed.chunks),
        cpuMsPerReply: cpuPerReply,
        leases,
        commands,
        killed,
        single,
        singleHeld,
      };
    } finally {
      if (server) server.kill();
      await redis.stop();
      await store.drop().catch(() => {});
      rmSync(directory, { recursive: true, force: true });
    }
  }

  return { run };
}
