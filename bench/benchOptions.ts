/**
 * `npm run bench`'s options: `--help`'s text, the flags with their defaults,
 * and the sizes each scenario runs at (`--quick`: small ones).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ServerKind } from './processes.ts';

const HELP = `npm run bench -- [options]

Scenarios (--scenario, comma-separated; default burst,sustained,saturate,gateway,actors):
  burst      --burst-sessions WebSocket sessions (default 5000) send one message in the same
             instant (5 chunks x 400 ms): memory per connection, first chunk p50/p99, full
             reply p99, server CPU per reply, for bare ws, Socket.IO, llm-chat on SQLite (the
             default store) and llm-chat --store memory
  sustained  --sustained-sessions (default 10000), two replies each, first messages spread over
             one reply's length, one server process: first chunk p99 (bare ws beside it)
  saturate   --saturate-sessions sessions, 0 ms interval, messages back to back: chunks/s
  gateway    streamed POST /v1/chat/completions at --gateway-concurrency (default 32,4), for
             --gateway-seconds each: straight to a fast fake OpenAI upstream (20 deltas at
             once), then through llm-chat; req/s, added latency, server CPU per request
  actors     in-process: activate N sessions through the registry (no sockets), heap per
             idle session, event rate to one session at 10 vs N sessions
  idle       hold N WebSocket sessions for --hold-seconds; memory per connection
  stream     N WebSocket sessions stream --messages replies each (5 chunks x 400 ms)
  churn      in-process: create, answer and passivate N sessions; RSS before vs after
  abuse      (not in the default set) malformed upgrades, early hang-ups, half-open peers and
             slow consumers at a child server, then fuzzing of every surface; slots held after
             (must be 0), cases run
  faults     (not in the default set) 'abuse', then the crash harness with --kills SIGKILLs,
             then what durable acknowledgement costs: messages accepted/s and p99 time to 202
             on SQLite and PostgreSQL
  cluster    (not in the default set) N WebSocket sessions (--cluster-sessions, 100000) on one
             port over --workers processes (6) sharing a Redis of the bench's own and one
             store, --stream-fraction (0.1) of them streaming; the same load on one process;
             cancel/delete through any worker; a worker killed with SIGKILL
  auth       (not in the default set) what an API-key check costs: µs per check (cached, each
             store, a wrong key, --auth none), and GET /api/sessions/:id per second with
             --auth none vs keys
  tools      (not in the default set) /v1 against a fake upstream: server CPU and latency
             per reply for plain text, a tool call, two parallel calls, a tool result

Options:
  --cluster-sessions N  --workers W  --stream-fraction F  --lease-ms MS  --kill-sample N   ('cluster')
  --burst-sessions N      (default 5000)       --burst-peers LIST (default all four:
                          baseline,socketio,llm-chat,llm-chat-memory)
  --burst-rounds N        run the peers N times, one after another in turn (default 1), and
                          report each figure's median: single runs on this shared machine
                          moved Socket.IO's first-chunk p99 from 529 to 837 ms
  --sustained-sessions N  (default 10000)
  --warm-up N             'burst', 'sustained', 'stream': before the measured run, N sessions of
                          another fleet stream one reply each and close, on every peer alike,
                          and the server is left to go quiet (default: the measured fleet's
                          size, at most 5000; 0 = none): the measured messages then meet code
                          the JIT has compiled, as on a server that has been serving
  --gateway-seconds S     (default 5)          --gateway-concurrency LIST (default 32,4)
  --actors N              sessions for 'actors' (default 100000)
  --idle-sessions N       (default 19000)      --hold-seconds S   (default 60)
  --stream-sessions N     (default 10000)      --messages M       (default 2)
  --spread-ms S           'stream': first messages start at random offsets within S ms
                          (default 2000: one reply's length); 0 = all in the same instant
  --saturate-sessions N   (default 200)        --duration-seconds S (default 10)
  --churn N               sessions for 'churn' (default 1000000)
  --tool-replies N        replies per kind for 'tools' (default 2000)
  --tool-concurrency C    requests in flight for 'tools' (default 20)
  --abuse N               malformed upgrades and early hang-ups for 'abuse' (default 10000)
  --half-open N           half-open peers (default 200)   --slow-consumers N (default 20)
  --fuzz-runs N           fuzz cases per surface (default: FUZZ_RUNS, else 5000)
  --kills N               'faults': SIGKILLs of the crash harness (default 30)   --seed S (default 20261201)
  --ack-clients N         'faults': sessions posting back to back (default 50)   --ack-seconds S (default 10)
  --before-root DIR       'faults': also measure the checkout in DIR (e.g. the write-behind version);
                          'burst': also run llm-chat on SQLite from DIR, in turn with the other peers
                          round by round, and print this checkout's figures over DIR's
  --database-url URL      'faults': PostgreSQL server (default postgres://postgres@127.0.0.1:5432/test)
  --auth-checks N         checks per case for 'auth' (default 200000)
  --auth-seconds S        load per mode for 'auth' (default 10)   --auth-concurrency N (default 32)
  --auth-postgres URL     also time a key lookup in PostgreSQL (a throw-away schema), e.g.
                          postgres://postgres@127.0.0.1:5432/test
  --rate R                new connections per second (default 1000)
  --per-generator N       connections per generator process (default 9000)
  --url URL               load a server that is already running (loopback only, e.g.
                          ws://127.0.0.1:8080/ws); no peers, no server-side figures
  --quick                 small sizes: a smoke run in a couple of minutes
  --no-baseline           skip the peer runs (bare ws, Socket.IO)
  --json                  print the results as JSON
  --cpu-prof DIR          each server process writes a V8 CPU profile into DIR when it stops
  --max-seconds S         stop everything after S seconds (default 1800)

Connections come from 127.0.0.2, 127.0.0.3, ... (one address per generator process,
each new set of generators taking the next ones, round to 127.0.0.254), so no address
runs out of its ~28k ephemeral ports, nor finds them in TIME_WAIT from the last run; a process here may hold at most
20,000 open files, hence several generators. Targets are never anything but loopback.
The machine is shared: compare ratios within one run, not absolute times across runs.
`;

export const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'burst,sustained,saturate,gateway,actors' },
    'burst-sessions': { type: 'string', default: '5000' },
    'burst-peers': { type: 'string', default: 'baseline,socketio,llm-chat,llm-chat-memory' },
    'burst-rounds': { type: 'string', default: '1' },
    'sustained-sessions': { type: 'string', default: '10000' },
    'warm-up': { type: 'string' },
    'gateway-seconds': { type: 'string', default: '5' },
    'gateway-concurrency': { type: 'string', default: '32,4' },
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
    'cpu-prof': { type: 'string' },
    'max-seconds': { type: 'string', default: '1800' },
    'cluster-sessions': { type: 'string', default: '100000' },
    workers: { type: 'string', default: '6' },
    'stream-fraction': { type: 'string', default: '0.1' },
    'lease-ms': { type: 'string', default: '5000' },
    'kill-sample': { type: 'string', default: '200' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

if (values['cpu-prof']) process.env['BENCH_CPU_PROF_DIR'] = values['cpu-prof'];
if (values['before-root']) process.env['BENCH_BEFORE_ROOT'] = resolve(values['before-root']);

/** A size flag, or its small `--quick` value. */
export const int = (name: keyof typeof values, quick: number) => (values.quick ? quick : Number(values[name]));
export const config = {
  // `faults` is issue 10's whole figure set: the edge's abuse part and the crash/durability part.
  scenarios: new Set(String(values.scenario).split(',').flatMap((name) => (name === 'faults' ? ['abuse', 'faults'] : [name]))),
  actors: int('actors', 10_000),
  idleSessions: int('idle-sessions', 2_000),
  holdSeconds: int('hold-seconds', 5),
  streamSessions: int('stream-sessions', 1_000),
  messages: int('messages', 2),
  spreadMs: Number(values['spread-ms']),
  burstSessions: int('burst-sessions', 500),
  burstPeers: [
    ...(String(values['burst-peers']).split(',') as ServerKind[]).filter((kind) => kind !== 'llm-chat-before'),
    ...(values['before-root'] ? (['llm-chat-before'] as const) : []),
  ],
  burstRounds: Math.max(1, Number(values['burst-rounds'])),
  sustainedSessions: int('sustained-sessions', 1_000),
  /** Undefined: as many as the measured fleet, at most 5,000 (20,000 open files: both fleets are connected at once). */
  warmUpSessions: values.quick ? 200 : values['warm-up'] === undefined ? undefined : Number(values['warm-up']),
  gatewaySeconds: int('gateway-seconds', 2),
  gatewayConcurrency: String(values['gateway-concurrency']).split(',').map(Number),
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
  clusterSessions: int('cluster-sessions', 3_000),
  workers: int('workers', 3),
  streamFraction: Number(values['stream-fraction']),
  leaseMs: Number(values['lease-ms']),
  killSample: int('kill-sample', 50),
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
