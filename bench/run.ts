/**
 * `npm run bench`: load figures for llm-chat, side by side with a bare `ws`
 * server doing the same work. Loopback only, bounded in count and time.
 * `npm run bench -- --help` lists the options.
 */
import { parseArgs } from 'node:util';
import type { Child, ServerUnderTest } from './processes.ts';
import { stopStarted } from './clusterProcesses.ts';
import { createClusterBench } from './clusterScenario.ts';
import { runAbuse } from './abuse.ts';
import { runFaults } from './faults.ts';
import { runAuthCost } from './authCost.ts';
import { createScenarios } from './scenarios.ts';
import { formatNumber, table } from './stats.ts';
import type { Row } from './stats.ts';

const HELP = `npm run bench -- [options]

Scenarios (--scenario, comma-separated; default all):
  actors    in-process: activate N sessions through the registry (no sockets), heap per
            idle session, event rate to one session at 10 vs N sessions
  idle      hold N WebSocket sessions for --hold-seconds; memory per connection
  stream    N WebSocket sessions stream --messages replies at once (5 chunks x 400 ms)
  saturate  --saturate-sessions sessions, 0 ms interval, messages back to back: chunks/s
  churn     in-process: create, answer and passivate N sessions; RSS before vs after
  cluster   N WebSocket sessions on one port over --workers processes sharing a Redis of the
            bench's own and one store (PostgreSQL schema, else SQLite), --stream-fraction of
            them streaming; the same streaming load on one process; cancel and delete through
            any worker; a worker killed with SIGKILL (not in the default set: run it by name)
  abuse     malformed upgrades, early hang-ups, half-open peers and slow consumers at a child
            server, then fuzzing of every surface; slots held after (must be 0), cases run
  faults    (not in the default set) 'abuse', then the crash harness with --kills SIGKILLs, then
            what durable acknowledgement costs: messages accepted/s and p99 time to 202 on
            SQLite and PostgreSQL
  auth      what an API-key check costs: µs per check (cached, each store, a wrong key,
            --auth none), and GET /api/sessions/:id per second with --auth none vs keys
            (not in the default set: npm run bench -- --scenario auth)

Options:
  --actors N              sessions for 'actors' (default 100000)
  --idle-sessions N       (default 19000)      --hold-seconds S   (default 60)
  --stream-sessions N     (default 10000)      --messages M       (default 2)
  --spread-ms S           'stream': first messages start at random offsets within S ms
                          (default 2000: one reply's length, so with 2 messages each all
                          sessions stream concurrently); 0 = all in the same instant
  --saturate-sessions N   (default 200)        --duration-seconds S (default 10)
  --churn N               sessions for 'churn' (default 1000000)
  --cluster-sessions N    sessions for 'cluster' (default 100000)
  --workers W             server processes for 'cluster' (default 6)
  --stream-fraction F     share of the sessions streaming at once in 'cluster' (default 0.1)
  --lease-ms MS           the workers' lease in 'cluster' (default 5000)
  --kill-sample N         sessions of the killed worker timed until served elsewhere (default 200)
  --abuse N               malformed upgrades and early hang-ups for 'abuse' (default 10000)
  --half-open N           half-open peers (default 200)   --slow-consumers N (default 20)
  --fuzz-runs N           fuzz cases per surface (default: FUZZ_RUNS, else 5000)
  --kills N               'faults': SIGKILLs of the crash harness (default 30)   --seed S (default 20261201)
  --ack-clients N         'faults': sessions posting back to back (default 50)   --ack-seconds S (default 10)
  --before-root DIR       'faults': also measure the checkout in DIR (e.g. the write-behind version)
  --database-url URL      'faults': PostgreSQL server (default postgres://postgres@127.0.0.1:5432/test)
  --auth-checks N         checks per case for 'auth' (default 200000)
  --auth-seconds S        load per mode for 'auth' (default 10)   --auth-concurrency N (default 32)
  --auth-postgres URL     also time a key lookup in PostgreSQL (a throw-away schema), e.g.
                          postgres://postgres@127.0.0.1:5432/test
  --rate R                new connections per second (default 1000)
  --per-generator N       connections per generator process (default 9000)
  --url URL               load a server that is already running (loopback only, e.g.
                          ws://127.0.0.1:8080/ws); no baseline, no server-side figures
  --quick                 small sizes: a smoke run in about a minute
  --no-baseline           skip the bare-ws baseline runs
  --json                  print the results as JSON
  --max-seconds S         stop everything after S seconds (default 1800)

Connections come from 127.0.0.2, 127.0.0.3, ... (one address per generator process),
so no address runs out of its ~28k ephemeral ports; a process here may hold at most
20,000 open files, hence several generators. Targets are never anything but loopback.
`;

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'actors,idle,stream,saturate,churn,abuse' },
    actors: { type: 'string', default: '100000' },
    'idle-sessions': { type: 'string', default: '19000' },
    'hold-seconds': { type: 'string', default: '60' },
    'stream-sessions': { type: 'string', default: '10000' },
    messages: { type: 'string', default: '2' },
    'spread-ms': { type: 'string', default: '2000' },
    'saturate-sessions': { type: 'string', default: '200' },
    'duration-seconds': { type: 'string', default: '10' },
    churn: { type: 'string', default: '1000000' },
    'cluster-sessions': { type: 'string', default: '100000' },
    workers: { type: 'string', default: '6' },
    'stream-fraction': { type: 'string', default: '0.1' },
    'lease-ms': { type: 'string', default: '5000' },
    'kill-sample': { type: 'string', default: '200' },
    abuse: { type: 'string', default: '10000' },
    'half-open': { type: 'string', default: '200' },
    'slow-consumers': { type: 'string', default: '20' },
    'fuzz-runs': { type: 'string', default: process.env['FUZZ_RUNS'] ?? '5000' },
    kills: { type: 'string', default: '30' },
    seed: { type: 'string', default: '20261201' },
    'ack-clients': { type: 'string', default: '50' },
    'ack-seconds': { type: 'string', default: '10' },
    'before-root': { type: 'string' },
    'database-url': { type: 'string', default: process.env['LLM_CHAT_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test' },
    'auth-checks': { type: 'string', default: '200000' },
    'auth-seconds': { type: 'string', default: '10' },
    'auth-concurrency': { type: 'string', default: '32' },
    'auth-postgres': { type: 'string' },
    rate: { type: 'string', default: '1000' },
    'per-generator': { type: 'string', default: '9000' },
    quick: { type: 'boolean', default: false },
    url: { type: 'string' },
    'no-baseline': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    'max-seconds': { type: 'string', default: '1800' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const int = (name: keyof typeof values, quick: number) => (values.quick ? quick : Number(values[name]));
const config = {
  // `faults` is issue 10's whole figure set: the edge's abuse part and the crash/durability part.
  scenarios: new Set(String(values.scenario).split(',').flatMap((name) => (name === 'faults' ? ['abuse', 'faults'] : [name]))),
  actors: int('actors', 10_000),
  idleSessions: int('idle-sessions', 2_000),
  holdSeconds: int('hold-seconds', 5),
  streamSessions: int('stream-sessions', 1_000),
  messages: int('messages', 2),
  spreadMs: Number(values['spread-ms']),
  saturateSessions: int('saturate-sessions', 100),
  durationSeconds: int('duration-seconds', 5),
  churn: int('churn', 50_000),
  clusterSessions: int('cluster-sessions', 3_000),
  workers: int('workers', 3),
  streamFraction: Number(values['stream-fraction']),
  leaseMs: Number(values['lease-ms']),
  killSample: int('kill-sample', 50),
  abuse: { abuse: int('abuse', 2_000), halfOpen: int('half-open', 50), slowConsumers: int('slow-consumers', 10), fuzzRuns: int('fuzz-runs', 1_000) },
  authChecks: int('auth-checks', 20_000),
  authSeconds: int('auth-seconds', 3),
  authConcurrency: Number(values['auth-concurrency']),
  authPostgres: values['auth-postgres'],
  rate: Number(values.rate),
  perGenerator: Number(values['per-generator']),
  baseline: !values['no-baseline'] && values.url === undefined,
  url: values.url === undefined ? undefined : loopbackUrl(values.url),
};

/** Load only ever goes to this machine's loopback addresses. */
function loopbackUrl(raw: string): URL {
  const url = new URL(raw);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!(host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host))) {
    process.stderr.write(`bench: refusing ${raw}: only loopback targets (127.0.0.0/8, localhost, ::1) are allowed\n`);
    process.exit(2);
  }
  return url;
}
const children: Child[] = [];
const servers: ServerUnderTest[] = [];
const log = (line: string) => process.stderr.write(`${line}\n`);

// Bounded in time: whatever happens, everything stops by itself.
const deadline = setTimeout(() => {
  log(`bench: --max-seconds ${String(values['max-seconds'])} reached, stopping`);
  stopStarted();
  for (const child of children) child.kill();
  process.exit(2);
}, Number(values['max-seconds']) * 1000);
deadline.unref();

const scenarios = createScenarios({ config, log, children, servers });

// Interrupted: nothing it started stays behind (a killed primary would leave its workers).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`bench: ${signal}, stopping`);
    stopStarted();
    for (const child of children) child.kill();
    process.exit(130);
  });
}

const ratio = (ours: number, base: number | undefined) => (base === undefined || !base ? '' : `${(ours / base).toFixed(2)}×`);
const verdict = (ok: boolean): 'pass' | 'FAIL' => (ok ? 'pass' : 'FAIL');

async function main() {
  const rows: Row[] = [];
  const results: Record<string, unknown> = { config };
  const both = async <T,>(run: (kind: 'llm-chat' | 'baseline') => Promise<T>) => ({
    ours: await run('llm-chat'),
    base: config.baseline ? await run('baseline') : undefined,
  });

  if (config.scenarios.has('actors')) {
    log(`actors: activating ${config.actors} sessions in-process`);
    const actors = await scenarios.inProcess('activation', config.actors);
    results['actors'] = actors;
    rows.push(
      { figure: `actors: ${formatNumber(actors['sessions']!)} sessions activated (s)`, ours: formatNumber(actors['activationSeconds']!, 2), target: '< 10 s', verdict: verdict(actors['activationSeconds']! < 10) },
      { figure: 'actors: heap per idle session (KB)', ours: formatNumber(actors['heapPerSessionKB']!, 2), target: '≤ 12 KB', verdict: verdict(actors['heapPerSessionKB']! <= 12) },
      { figure: 'actors: RSS per idle session (KB)', ours: formatNumber(actors['rssPerSessionKB']!, 2) },
      {
        figure: `actors: events/s to one session at ${formatNumber(actors['sessions']!)} vs 10`,
        ours: `${formatNumber(actors['oneSessionEventsPerSecondAtN']!)} vs ${formatNumber(actors['oneSessionEventsPerSecondAt10']!)}`,
        ratio: ratio(actors['oneSessionEventsPerSecondAtN']!, actors['oneSessionEventsPerSecondAt10']),
        target: '≈ 1×',
        verdict: verdict(actors['oneSessionEventsPerSecondAtN']! >= 0.7 * actors['oneSessionEventsPerSecondAt10']!),
      },
      {
        figure: 'actors: events/s spread over all sessions vs over 10',
        ours: `${formatNumber(actors['spreadEventsPerSecondAtN']!)} vs ${formatNumber(actors['spreadEventsPerSecondAt10']!)}`,
        ratio: ratio(actors['spreadEventsPerSecondAtN']!, actors['spreadEventsPerSecondAt10']),
      },
    );
  }

  if (config.scenarios.has('idle')) {
    const { ours, base } = await both(scenarios.idle);
    results['idle'] = { ours, baseline: base };
    rows.push(
      { figure: `idle: sessions held ${config.holdSeconds} s (failed)`, ours: `${ours.aliveAtEnd} (${ours.failed})`, baseline: base ? `${base.aliveAtEnd} (${base.failed})` : '', target: `${config.idleSessions}`, verdict: verdict(ours.aliveAtEnd === config.idleSessions) },
      { figure: 'idle: RSS per connected session (KB)', ours: formatNumber(ours.rssPerSessionKB, 2), baseline: base ? formatNumber(base.rssPerSessionKB, 2) : '', ratio: ratio(ours.rssPerSessionKB, base?.rssPerSessionKB), target: '≤ 2.5×', verdict: base ? verdict(ours.rssPerSessionKB <= 2.5 * base.rssPerSessionKB) : '' },
      { figure: 'idle: heap per connected session (KB)', ours: formatNumber(ours.heapPerSessionKB, 2), baseline: base ? formatNumber(base.heapPerSessionKB, 2) : '', ratio: ratio(ours.heapPerSessionKB, base?.heapPerSessionKB) },
      { figure: 'idle: event-loop delay p99 (ms)', ours: formatNumber(ours.lagP99Ms), baseline: base ? formatNumber(base.lagP99Ms) : '' },
    );
  }

  if (config.scenarios.has('stream')) {
    const { ours, base } = await both(scenarios.stream);
    results['stream'] = { ours, baseline: base };
    const b = (value: number | undefined, digits = 1) => (value === undefined ? '' : formatNumber(value, digits));
    rows.push(
      { figure: `stream: replies complete of ${ours.expected} (spread ${config.spreadMs} ms)`, ours: `${ours.completed}`, baseline: b(base?.completed, 0), target: 'all', verdict: verdict(ours.completed === ours.expected && ours.sessions === config.streamSessions) },
      { figure: 'stream: time to first chunk p50 / p99 / max (ms)', ours: `${formatNumber(ours.ttfcP50Ms)} / ${formatNumber(ours.ttfcP99Ms)} / ${formatNumber(ours.ttfcMaxMs)}`, baseline: base ? `${formatNumber(base.ttfcP50Ms)} / ${formatNumber(base.ttfcP99Ms)} / ${formatNumber(base.ttfcMaxMs)}` : '', target: 'p99 < 500', verdict: verdict(ours.ttfcP99Ms < 500) },
      { figure: 'stream: chunk lateness p50 / p99 (ms)', ours: `${formatNumber(ours.latenessP50Ms)} / ${formatNumber(ours.latenessP99Ms)}`, baseline: base ? `${formatNumber(base.latenessP50Ms)} / ${formatNumber(base.latenessP99Ms)}` : '', target: 'p99 < 100', verdict: verdict(ours.latenessP99Ms < 100) },
      { figure: 'stream: chunks/s delivered', ours: formatNumber(ours.chunksPerSecond), baseline: b(base?.chunksPerSecond), ratio: ratio(ours.chunksPerSecond, base?.chunksPerSecond) },
      { figure: 'stream: total time (s)', ours: formatNumber(ours.totalSeconds, 2), baseline: b(base?.totalSeconds, 2) },
      { figure: 'stream: RSS per streaming session (KB)', ours: formatNumber(ours.rssPerSessionStreamingKB, 2), baseline: b(base?.rssPerSessionStreamingKB, 2), ratio: ratio(ours.rssPerSessionStreamingKB, base?.rssPerSessionStreamingKB) },
      { figure: 'stream: event-loop delay p99 (ms)', ours: formatNumber(ours.lagP99Ms), baseline: b(base?.lagP99Ms) },
      { figure: 'stream: server CPU per reply (ms)', ours: formatNumber(ours.cpuMsPerReply, 3), baseline: b(base?.cpuMsPerReply, 3), ratio: ratio(ours.cpuMsPerReply, base?.cpuMsPerReply) },
    );
  }

  if (config.scenarios.has('saturate')) {
    const { ours, base } = await both(scenarios.saturate);
    results['saturate'] = { ours, baseline: base };
    rows.push({
      figure: `saturate: chunks/s, ${ours.sessions} sessions, 0 ms`,
      ours: formatNumber(ours.chunksPerSecond),
      baseline: base ? formatNumber(base.chunksPerSecond) : '',
      ratio: ratio(ours.chunksPerSecond, base?.chunksPerSecond),
      target: '≥ 0.7×',
      verdict: base ? verdict(ours.chunksPerSecond >= 0.7 * base.chunksPerSecond) : '',
    });
  }

  if (config.scenarios.has('churn')) {
    log(`churn: ${config.churn} sessions created, answered and passivated in-process`);
    const churn = await scenarios.inProcess('churn', config.churn);
    results['churn'] = churn;
    rows.push(
      { figure: `churn: ${formatNumber(churn['sessions']!)} sessions (sessions/s)`, ours: formatNumber(churn['sessionsPerSecond']!) },
      { figure: 'churn: RSS before → after (MB)', ours: `${formatNumber(churn['rssBeforeMB']!)} → ${formatNumber(churn['rssAfterMB']!)}`, ratio: `${churn['rssGrowthPercent']! >= 0 ? '+' : ''}${formatNumber(churn['rssGrowthPercent']!)}%`, target: '≤ +10%', verdict: verdict(churn['rssGrowthPercent']! <= 10) },
      { figure: 'churn: heap before → after (MB)', ours: `${formatNumber(churn['heapBeforeMB']!)} → ${formatNumber(churn['heapAfterMB']!)}` },
    );
  }

  if (config.scenarios.has('cluster')) {
    if (config.url) throw new Error('--scenario cluster starts its own servers; --url does not apply');
    const cluster = await createClusterBench(
      {
        sessions: config.clusterSessions,
        workers: config.workers,
        fraction: config.streamFraction,
        leaseMs: config.leaseMs,
        rate: config.rate,
        perGenerator: config.perGenerator,
        killSample: config.killSample,
        baseline: config.baseline,
      },
      log,
      children,
    ).run();
    results['cluster'] = cluster;
    const s = cluster.single;
    const ms = (value: number) => formatNumber(value);
    rows.push(
      { figure: `cluster: connections held over ${cluster.workers} workers (${cluster.store})`, ours: `${cluster.held} (${cluster.failed} failed)`, target: `${cluster.sessions}`, verdict: verdict(cluster.held === cluster.sessions) },
      { figure: 'cluster: RSS per connection, summed over the workers (KB)', ours: formatNumber(cluster.rssPerConnectionKB, 2), baseline: `total ${formatNumber(cluster.rssTotalMB)} MB` },
      { figure: `cluster: ${cluster.streamed.streaming} streaming at once, replies complete`, ours: `${cluster.streamed.completed}`, baseline: s ? `${s.completed} of ${s.streaming} (${cluster.singleHeld} held)` : '', target: 'all', verdict: verdict(cluster.streamed.completed === cluster.streamed.streaming) },
      { figure: 'cluster: time to first chunk p50 / p99 (ms)', ours: `${ms(cluster.streamed.ttfcP50Ms)} / ${ms(cluster.streamed.ttfcP99Ms)}`, baseline: s ? `${ms(s.ttfcP50Ms)} / ${ms(s.ttfcP99Ms)}` : '', target: 'p99 < 500', verdict: verdict(cluster.streamed.ttfcP99Ms < 500) },
      { figure: 'cluster: chunk lateness p50 / p99 (ms)', ours: `${ms(cluster.streamed.latenessP50Ms)} / ${ms(cluster.streamed.latenessP99Ms)}`, baseline: s ? `${ms(s.latenessP50Ms)} / ${ms(s.latenessP99Ms)}` : '', target: 'p99 < 100', verdict: verdict(cluster.streamed.latenessP99Ms < 100) },
      { figure: 'cluster: chunks/s delivered (vs one process, same streaming load)', ours: formatNumber(cluster.streamed.chunksPerSecond), baseline: s ? formatNumber(s.chunksPerSecond) : '', ratio: ratio(cluster.streamed.chunksPerSecond, s?.chunksPerSecond) },
      { figure: 'cluster: server CPU per reply, all workers (ms)', ours: formatNumber(cluster.cpuMsPerReply, 3), baseline: `idle ${formatNumber(cluster.idleCpuMsPerSecond)} ms/s` },
      { figure: 'cluster: Redis commands issued per chunk: publishes / all (nodes\' own count)', ours: `${formatNumber(cluster.publishesPerChunk, 2)} / ${formatNumber(cluster.issuedPerChunk, 2)}`, baseline: `leases ${formatNumber(cluster.leaseCommandsPerChunk, 2)}` },
      { figure: 'cluster: Redis-side calls per chunk, scripts\' inner calls counted (all / less idle background)', ours: `${formatNumber(cluster.redisCommandsPerChunk, 2)} / ${formatNumber(cluster.redisCommandsPerChunkStreaming, 2)}`, baseline: `idle ${formatNumber(cluster.idleRedisCallsPerSecond)}/s` },
      { figure: 'cluster: Redis memory per live session, idle / streaming (bytes)', ours: `${formatNumber(cluster.redisPerSessionBytes)} / +${formatNumber(cluster.redisPerStreamingSessionBytes)}` },
      { figure: 'cluster: cancel via any worker p50 / p99 (ms)', ours: `${ms(cluster.commands.cancel.p50)} / ${ms(cluster.commands.cancel.p99)} (${cluster.commands.cancel.count})`, target: 'p99 < 100', verdict: verdict(cluster.commands.cancel.p99 < 100) },
      { figure: 'cluster: delete via any worker p50 / p99 (ms)', ours: `${ms(cluster.commands.delete.p50)} / ${ms(cluster.commands.delete.p99)} (${cluster.commands.delete.count})`, target: 'p99 < 100', verdict: verdict(cluster.commands.delete.p99 < 100) },
      { figure: `cluster: kill -9 of a worker → its sessions served elsewhere p50 / p99 / max (ms, ${cluster.killed.timed} timed)`, ours: `${ms(cluster.killed.servedAfter.p50)} / ${ms(cluster.killed.servedAfter.p99)} / ${ms(cluster.killed.servedAfter.max)}`, baseline: `lease ${config.leaseMs} ms`, target: `≤ lease + 1 s`, verdict: verdict(cluster.killed.failures === 0 && cluster.killed.servedAfter.max <= config.leaseMs + 1000) },
      { figure: 'cluster: killed worker replaced by the primary', ours: cluster.killed.replaced ? 'yes' : 'no', verdict: verdict(cluster.killed.replaced) },
    );
  }

  if (config.scenarios.has('abuse')) {
    const abuse = await runAbuse(config.abuse, log);
    results['abuse'] = abuse;
    const held = abuse.heldAfter;
    const clean = held.slots === 0 && held.ws === 0 && held.wsTracked === 0 && held.sse === 0 && held.bufferedBytes === 0;
    rows.push(
      { figure: `abuse: ${formatNumber(abuse.abused)} malformed upgrades / hang-ups: slots, sockets, streams, bytes held after`, ours: `${held.slots}, ${held.ws}, ${held.sse}, ${held.bufferedBytes}`, target: '0', verdict: verdict(clean) },
      { figure: `abuse: half-open peers dropped by ping (of ${config.abuse.halfOpen})`, ours: `${abuse.halfOpenDropped}`, target: `${config.abuse.halfOpen}`, verdict: verdict(abuse.halfOpenDropped === config.abuse.halfOpen) },
      { figure: `abuse: slow consumers closed 1013 (of ${config.abuse.slowConsumers})`, ours: `${abuse.slowConsumersClosed}`, target: `${config.abuse.slowConsumers}`, verdict: verdict(abuse.slowConsumersClosed === config.abuse.slowConsumers) },
      { figure: 'abuse: time until the edge held nothing (s)', ours: formatNumber(abuse.drainSeconds, 1) },
      { figure: 'abuse: fuzz cases passed, REST / WS / v1', ours: `${abuse.fuzzCases.rest} / ${abuse.fuzzCases.ws} / ${abuse.fuzzCases.v1}`, target: `${config.abuse.fuzzRuns} each`, verdict: verdict(Object.values(abuse.fuzzCases).every((cases) => cases === config.abuse.fuzzRuns)) },
      { figure: 'abuse: server heap after GC, before → after fuzzing (MB)', ours: `${formatNumber(abuse.heapBeforeMB, 1)} → ${formatNumber(abuse.heapAfterMB, 1)}`, target: '≤ +10%', verdict: verdict(abuse.heapAfterMB <= abuse.heapBeforeMB * 1.1) },
    );
  }

  if (config.scenarios.has('faults')) {
    const faults = await runFaults(
      {
        kills: int('kills', 10),
        seed: Number(values.seed),
        ackClients: int('ack-clients', 20),
        ackSeconds: int('ack-seconds', 3),
        databaseUrl: String(values['database-url']),
        beforeRoot: values['before-root'],
      },
      log,
    );
    results['faults'] = faults.results;
    rows.push(...faults.rows);
  }

  if (config.scenarios.has('auth')) {
    const auth = await runAuthCost(
      { checks: config.authChecks, seconds: config.authSeconds, concurrency: config.authConcurrency, postgresUrl: config.authPostgres },
      log,
    );
    results['auth'] = auth;
    for (const [name, micros] of Object.entries(auth.microsecondsPerCheck)) {
      rows.push({ figure: `auth: µs per check, ${name}`, ours: formatNumber(micros, 2) });
    }
    const { none, keys } = auth.requestsPerSecond;
    rows.push(
      { figure: 'auth: GET /api/sessions/:id per second, --auth keys vs none', ours: `${formatNumber(keys)} vs ${formatNumber(none)}`, ratio: ratio(keys, none) },
      { figure: 'auth: server CPU per request (µs), keys vs none', ours: `${formatNumber(auth.cpuMicrosPerRequest.keys)} vs ${formatNumber(auth.cpuMicrosPerRequest.none)}`, ratio: ratio(auth.cpuMicrosPerRequest.keys, auth.cpuMicrosPerRequest.none) },
      { figure: 'auth: latency p50 / p99 (ms), keys vs none', ours: `${formatNumber(auth.latencyMs.keys.p50, 2)} / ${formatNumber(auth.latencyMs.keys.p99, 2)} vs ${formatNumber(auth.latencyMs.none.p50, 2)} / ${formatNumber(auth.latencyMs.none.p99, 2)}` },
    );
  }

  if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else process.stdout.write(`\n${table(rows)}\n`);
}

main()
  .catch((error: unknown) => {
    log(`bench failed: ${String(error)}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const server of servers) await server.stop().catch(() => {});
    for (const child of children) child.kill();
    process.exit();
  });
