/**
 * `npm run bench`: load figures for llm-chat, side by side in one run with
 * the peers it is measured against (a bare `ws` server and a Socket.IO server
 * doing the same work, a fast fake OpenAI upstream), each printed with its
 * ratio and whether its target holds. Loopback only, bounded in count and
 * time. `npm run bench -- --help` lists the options.
 */
import { runAbuse } from './abuse.ts';
import { runFaults } from './faults.ts';
import { runAuthCost } from './authCost.ts';
import { gatewayScenario } from './gateway.ts';
import type { Child, ServerKind, ServerUnderTest } from './processes.ts';
import { actorRows, burstReport, churnRows, gatewayRows, idleRows, ratio, saturateRows, streamRows, sustainedRows, verdict } from './report.ts';
import type { Figures } from './report.ts';
import { stopStarted } from './clusterProcesses.ts';
import { medianFigures } from './stats.ts';
import { clusterRows } from './clusterRows.ts';
import { createClusterBench } from './clusterScenario.ts';
import { createScenarios } from './scenarios.ts';
import { formatNumber, table } from './stats.ts';
import { runToolCalls } from './toolCalls.ts';
import type { Row } from './stats.ts';
import { config, int, values } from './benchOptions.ts';

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

// Interrupted: nothing it started stays behind (a killed primary would leave its workers).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`bench: ${signal}, stopping`);
    stopStarted();
    for (const child of children) child.kill();
    process.exit(130);
  });
}

const scenarios = createScenarios({ config, log, children, servers });

async function main() {
  const rows: Row[] = [];
  const grids: string[] = [];
  const results: Record<string, unknown> = { config };
  const both = async <T,>(run: (kind: ServerKind) => Promise<T>) => ({
    ours: await run('llm-chat'),
    base: config.baseline ? await run('baseline') : undefined,
  });
  const figures = (value: unknown) => value as Figures;

  if (config.scenarios.has('burst')) {
    const rounds: Partial<Record<ServerKind, Figures[]>> = {};
    const shape = { sessions: config.burstSessions, messages: 1, spreadMs: 0 };
    const peers = config.burstPeers.filter((kind) => (config.baseline || (kind !== 'baseline' && kind !== 'socketio')) && (!config.url || kind === 'llm-chat'));
    // In turn, round after round, the order reversed every other round: a slow spell of the
    // machine falls on every peer alike, and going first favours none.
    for (let round = 1; round <= config.burstRounds; round += 1) {
      if (config.burstRounds > 1) log(`burst: round ${round} of ${config.burstRounds}`);
      for (const kind of round % 2 === 1 ? peers : [...peers].reverse()) (rounds[kind] ??= []).push(figures(await scenarios.stream(kind, shape)));
    }
    const runs = Object.fromEntries(Object.entries(rounds).map(([kind, list]) => [kind, medianFigures(list)])) as Partial<Record<ServerKind, Figures>>;
    results['burst'] = config.burstRounds > 1 ? { medians: runs, rounds } : runs;
    const report = burstReport(runs, config.burstSessions);
    const ofRounds = config.burstRounds > 1 ? ` (medians of ${config.burstRounds} rounds, peers in turn)` : '';
    grids.push(`burst: ${config.burstSessions} sessions send at once, 5 chunks 400 ms apart${ofRounds}\n${report.grid}`);
    rows.push(...report.rows);
  }

  if (config.scenarios.has('sustained')) {
    const shape = { sessions: config.sustainedSessions, messages: 2, spreadMs: 2000 };
    const { ours, base } = await both((kind) => scenarios.stream(kind, shape));
    results['sustained'] = { ours, baseline: base };
    rows.push(...sustainedRows(figures(ours), base && figures(base)));
  }

  if (config.scenarios.has('saturate')) {
    const { ours, base } = await both(scenarios.saturate);
    results['saturate'] = { ours, baseline: base };
    rows.push(...saturateRows(figures(ours), base && figures(base)));
  }

  if (config.scenarios.has('gateway') && !config.url) {
    const gateway = await gatewayScenario({ concurrencies: config.gatewayConcurrency, seconds: config.gatewaySeconds }, { log, children, servers });
    results['gateway'] = gateway;
    rows.push(...gatewayRows(gateway));
  }

  if (config.scenarios.has('actors')) {
    log(`actors: activating ${config.actors} sessions in-process`);
    const actors = await scenarios.inProcess('activation', config.actors);
    results['actors'] = actors;
    rows.push(...actorRows(actors));
  }

  if (config.scenarios.has('idle')) {
    const { ours, base } = await both(scenarios.idle);
    results['idle'] = { ours, baseline: base };
    rows.push(...idleRows(figures(ours), base && figures(base), { seconds: config.holdSeconds, sessions: config.idleSessions }));
  }

  if (config.scenarios.has('stream')) {
    const shape = { sessions: config.streamSessions, messages: config.messages, spreadMs: config.spreadMs };
    const { ours, base } = await both((kind) => scenarios.stream(kind, shape));
    results['stream'] = { ours, baseline: base };
    rows.push(...streamRows(figures(ours), base && figures(base), config.spreadMs));
  }

  if (config.scenarios.has('churn')) {
    log(`churn: ${config.churn} sessions created, answered and passivated in-process`);
    const churn = await scenarios.inProcess('churn', config.churn);
    results['churn'] = churn;
    rows.push(...churnRows(churn));
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
      { figure: 'abuse: server heap after GC, before → after fuzzing → a minute later (MB)', ours: `${formatNumber(abuse.heapBeforeMB, 1)} → ${formatNumber(abuse.heapAfterMB, 1)} → ${formatNumber(abuse.heapSettledMB, 1)}`, target: '≤ +10%', verdict: verdict(abuse.heapSettledMB <= abuse.heapBeforeMB * 1.1) },
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
    rows.push(...clusterRows(cluster, config.leaseMs));
  }

  if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else process.stdout.write(`\n${[...grids, table(rows)].join('\n\n')}\n`);
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
