/**
 * `npm run bench`: load figures for llm-chat, side by side with a bare `ws`
 * server doing the same work. Loopback only, bounded in count and time.
 * `npm run bench -- --help` lists the options.
 */
import { parseArgs } from 'node:util';
import type { Child, ServerUnderTest } from './processes.ts';
import { runAbuse } from './abuse.ts';
import { runFaults } from './faults.ts';
import { runAuthCost } from './authCost.ts';
import { createScenarios } from './scenarios.ts';
import { formatNumber, table } from './stats.ts';
import { runToolCalls } from './toolCalls.ts';
import type { Row } from './stats.ts';

const HELP = `npm run bench -- [options]

Scenarios (--scenario, comma-separated; default all):
  actors    in-process: activate N sessions through the registry (no sockets), heap per
            idle session, event rate to one session at 10 vs N sessions
  idle      hold N WebSocket sessions for --hold-seconds; memory per connection
  stream    N WebSocket sessions stream --messages replies at once (5 chunks x 400 ms)
  saturate  --saturate-sessions sessions, 0 ms interval, messages back to back: chunks/s
  churn     in-process: create, answer and passivate N sessions; RSS before vs after
  tools     (not in the default set) /v1 against a fake upstream: server CPU and latency
            per reply for plain text, a tool call, two parallel calls, a tool result
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
  --tool-replies N        replies per kind for 'tools' (default 2000)
  --tool-concurrency C    requests in flight for 'tools' (default 20)
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
    'tool-replies': { type: 'string', default: '2000' },
    'tool-concurrency': { type: 'string', default: '20' },
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
  toolReplies: int('tool-replies', 300),
  toolConcurrency: Number(values['tool-concurrency']),
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
  for (const child of children) child.kill();
  process.exit(2);
}, Number(values['max-seconds']) * 1000);
deadline.unref();

const scenarios = createScenarios({ config, log, children, servers });

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

  if (config.scenarios.has('tools')) {
    const figures = await runToolCalls({ replies: config.toolReplies, concurrency: config.toolConcurrency, log, servers });
    results['tools'] = figures;
    const plain = (streamed: boolean) => figures.find((figure) => figure.kind === (streamed ? 'plain text, streamed' : 'plain text'));
    for (const figure of figures) {
      const base = plain(figure.kind.endsWith('streamed'));
      rows.push({
        figure: `tools: ${figure.kind}: server CPU per reply (ms), latency p50 / p99 (ms)`,
        ours: `${formatNumber(figure.cpuMsPerReply, 3)}; ${formatNumber(figure.latencyP50Ms)} / ${formatNumber(figure.latencyP99Ms)}`,
        ratio: base && base !== figure ? `${ratio(figure.cpuMsPerReply, base.cpuMsPerReply)} CPU of plain` : '',
      });
    }
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
