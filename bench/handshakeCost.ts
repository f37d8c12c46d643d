/**
 * What a new WebSocket session costs a cluster node: one `src/main.ts` with
 * `REDIS_URL` (a redis-server of the bench's own) and PostgreSQL (a
 * throw-away schema), one generator opening `--sessions` WebSocket sessions
 * at `--rate` a second. Prints handshakes/s, the node's CPU ms per handshake,
 * Redis commands and PostgreSQL row operations per handshake, and, with
 * `--profile FILE`, writes a V8 CPU profile of the connection phase only
 * (taken over the inspector protocol, so start-up is not in it; read it
 * with bench/profileSummary.ts).
 *   node --import tsx bench/handshakeCost.ts [--sessions 3000] [--rate 300] [--warmup 1000] [--profile FILE] [--root CHECKOUT]
 */
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import WebSocket from 'ws';
import { startGenerators } from './processes.ts';
import { benchStore, cpuMsOf, startBenchRedis, startMain, stopStarted } from './clusterProcesses.ts';
import type { MainProcess } from './clusterProcesses.ts';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '3000' },
    rate: { type: 'string', default: '300' },
    warmup: { type: 'string', default: '1000' },
    profile: { type: 'string' },
    root: { type: 'string' },
  },
});
const sessions = Number(values.sessions);
const rate = Number(values.rate);
const sum = (numbers: number[]) => numbers.reduce((a, b) => a + b, 0);

/** The Chrome DevTools protocol over the server's `--inspect` socket: just enough to start and stop the CPU profiler. */
async function inspectorOf(server: MainProcess) {
  const url = /Debugger listening on (ws:\/\/\S+)/.exec(server.log())?.[1];
  if (!url) throw new Error('the server printed no inspector address');
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  let next = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { id?: number; result?: unknown };
    if (message.id !== undefined) waiting.get(message.id)?.(message.result);
  });
  const post = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      next += 1;
      waiting.set(next, resolve);
      socket.send(JSON.stringify({ id: next, method, params }));
    });
  return { post, close: () => socket.close() };
}

/** Row operations on the bench schema's tables so far (only this server uses the schema). */
async function rowOperations(client: pg.Client, schema: string): Promise<Record<string, number>> {
  const { rows } = await client.query<Record<string, string>>(
    `SELECT coalesce(sum(n_tup_ins),0) AS inserted, coalesce(sum(n_tup_upd),0) AS updated, coalesce(sum(seq_scan),0) + coalesce(sum(idx_scan),0) AS scans
       FROM pg_stat_user_tables WHERE schemaname = $1`,
    [schema],
  );
  return Object.fromEntries(Object.entries(rows[0] ?? {}).map(([name, value]) => [name, Number(value)]));
}

const APPLICATION = `llmchat_handshake_${process.pid}`;

/** CPU ms so far of redis-server and of the server's PostgreSQL backends. */
async function servicesCpuMs(client: pg.Client): Promise<{ redis: number; postgres: number }> {
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.client.info('server'))?.[1] ?? 0);
  const { rows } = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [APPLICATION]);
  return { redis: cpuMsOf(redisPid), postgres: sum(rows.map((row) => cpuMsOf(row.pid))) };
}

const redis = await startBenchRedis();
const store = await benchStore('/dev/null');
if (!store.env['STORE']?.startsWith('postgres')) throw new Error('PostgreSQL is needed (LLM_CHAT_TEST_DATABASE_URL or 127.0.0.1:5432)');
const schema = /search_path%3D(\w+)/.exec(store.env['DATABASE_URL']!)![1]!;
const statistics = new pg.Client({ connectionString: store.env['DATABASE_URL']!.split('?')[0] });
let server: MainProcess | undefined;
try {
  await statistics.connect();
  server = await startMain(
    [
      '--port', '0', '--auth', 'none', '--conn-rate-per-ip', '0', '--messages-per-minute', '0', '--max-sessions', '0',
      '--shed-lag-ms', '0', '--log-level', 'info', '--no-inspector', '--ws-ping-ms', '0',
    ],
    // Named, so its PostgreSQL backends can be found (their CPU counts: they share the machine's cores).
    { ...store.env, DATABASE_URL: `${store.env['DATABASE_URL']!}&application_name=${APPLICATION}`, REDIS_URL: redis.url, WORKERS: '1' },
    { nodeFlags: values.profile ? ['--inspect=127.0.0.1:0'] : [], ...(values.root ? { root: values.root } : {}) },
  );
  const pid = server.child.pid!;
  await sleep(1500);
  const inspector = values.profile ? await inspectorOf(server) : undefined;
  const [generator] = await startGenerators(1);
  const url = `ws://127.0.0.1:${server.port}/ws`;
  // Not measured: the JIT warms up and lazily loaded code loads (these sessions stay open).
  await generator!.child.ask({ type: 'connect', url, client: 'ws', count: Number(values.warmup), ratePerSecond: rate, localAddress: generator!.address }, 'connected', 600_000);
  await sleep(1000);
  await inspector?.post('Profiler.enable');
  await inspector?.post('Profiler.setSamplingInterval', { interval: 200 });
  await inspector?.post('Profiler.start');
  const cpu0 = cpuMsOf(pid);
  const mainCpu0 = cpuMsOf(pid, pid);
  const services0 = await servicesCpuMs(statistics);
  const byCommand0 = await redis.commandCalls();
  const rows0 = await rowOperations(statistics, schema);
  const started = performance.now();
  const result = await generator!.child.ask(
    { type: 'connect', url, client: 'ws', count: sessions, ratePerSecond: rate, localAddress: generator!.address },
    'connected',
    600_000,
  );
  const elapsedMs = performance.now() - started;
  const cpuMs = cpuMsOf(pid) - cpu0;
  const mainCpuMs = cpuMsOf(pid, pid) - mainCpu0;
  // A backend the pool opened during the phase counts whole (its start-up is small next to the phase).
  const services1 = await servicesCpuMs(statistics);
  const profile = inspector ? ((await inspector.post('Profiler.stop')) as { profile: unknown }).profile : undefined;
  // Commands and rows a little later: writes batched behind the handshake land by then.
  await sleep(2000);
  const byCommand = await redis.commandCalls();
  const calls = sum(Object.values(byCommand)) - sum(Object.values(byCommand0));
  const rows1 = await rowOperations(statistics, schema);
  const ok = Number(result['ok']);
  const perHandshake = (value: number) => Number((value / Math.max(1, ok)).toFixed(3));
  process.stdout.write(
    `${JSON.stringify(
      {
        sessions,
        rate,
        ok,
        failed: result['failed'],
        errors: result['errors'],
        handshakesPerSecond: Number((ok / (elapsedMs / 1000)).toFixed(1)),
        cpuMsPerHandshake: perHandshake(cpuMs),
        mainThreadCpuMsPerHandshake: perHandshake(mainCpuMs),
        redisCpuMsPerHandshake: perHandshake(services1.redis - services0.redis),
        postgresCpuMsPerHandshake: perHandshake(services1.postgres - services0.postgres),
        redisCommandsPerHandshake: perHandshake(calls),
        redisByCommand: Object.fromEntries(
          Object.entries(byCommand)
            .map(([name, count]) => [name, perHandshake(count - (byCommand0[name] ?? 0))] as const)
            .filter(([, count]) => count > 0),
        ),
        // PostgreSQL's table statistics lag by up to a second or so: a rough figure.
        postgresRowsPerHandshake: Object.fromEntries(Object.entries(rows1).map(([name, value]) => [name, perHandshake(value - (rows0[name] ?? 0))])),
      },
      null,
      2,
    )}\n`,
  );
  if (profile && values.profile) writeFileSync(values.profile, JSON.stringify(profile));
  inspector?.close();
  await generator!.child.ask({ type: 'close' }, 'closed');
  generator!.child.kill();
} finally {
  server?.child.kill('SIGTERM');
  await sleep(3000);
  stopStarted();
  await statistics.end().catch(() => {});
  await redis.stop();
  await store.drop().catch(() => {});
}
