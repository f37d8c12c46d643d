/**
 * Turns the scenarios' raw figures into the tables `npm run bench` prints:
 * each figure beside the one it is compared with, the ratio, the target and
 * whether it holds. The targets are issue 14's (and the earlier issues').
 */
import type { GatewayResult } from './gateway.ts';
import { SERVER_LABELS } from './processes.ts';
import type { ServerKind } from './processes.ts';
import { formatNumber, grid } from './stats.ts';
import type { Row } from './stats.ts';

export type Figures = Record<string, number>;

export const ratio = (ours: number, base: number | undefined) => (base === undefined || !base || !Number.isFinite(ours) ? '' : `${(ours / base).toFixed(2)}×`);
export const verdict = (ok: boolean): 'pass' | 'FAIL' => (ok ? 'pass' : 'FAIL');
const n = (value: number | undefined, digits = 1) => (value === undefined ? '' : formatNumber(value, digits));

/** A target "ours ≤ factor × theirs", as a row. */
function against(figure: string, ours: number, theirs: number | undefined, factor: number, who: string, digits = 1): Row {
  return {
    figure,
    ours: n(ours, digits),
    baseline: theirs === undefined ? '' : `${n(theirs, digits)} (${who})`,
    ratio: ratio(ours, theirs),
    target: `≤ ${factor}× ${who}`,
    verdict: theirs === undefined ? '' : verdict(ours <= factor * theirs),
  };
}

/** The burst table in the shape (one line per server), then its targets. */
export function burstReport(runs: Partial<Record<ServerKind, Figures>>, sessions: number): { grid: string; rows: Row[] } {
  const order: ServerKind[] = ['baseline', 'socketio', 'llm-chat', 'llm-chat-memory', 'llm-chat-before'];
  const lines = order
    .filter((kind) => runs[kind])
    .map((kind) => {
      const run = runs[kind]!;
      return [
        SERVER_LABELS[kind],
        n(run['rssPerConnectionKB']),
        n(run['heapPerConnectionKB']),
        `${n(run['acceptedP50Ms'], 0)} / ${n(run['acceptedP99Ms'], 0)} ms`,
        `${n(run['ttfcP50Ms'], 0)} ms`,
        `${n(run['ttfcP99Ms'], 0)} ms`,
        `${n(run['fullP99Ms'], 0)} ms`,
        `${n(run['cpuMsPerReply'], 2)} ms`,
        `${n(run['mainThreadCpuMsPerReply'], 2)} ms`,
        `${n(run['storeThreadsCpuMsPerReply'], 3)} ms`,
        `${n(run['gcPauseMsPerReply'], 3)} ms`,
        `${run['completed']}/${run['expected']}`,
      ];
    });
  const table = grid(
    // Heap beside RSS: RSS also holds how far the young generation grew, and moves by a third from run to run.
    ['server', 'KiB per connection (RSS)', 'KiB heap per connection', 'accepted p50 / p99', 'first chunk p50', 'first chunk p99', 'full reply p99', 'server CPU per reply', 'of it, main thread', 'of it, store thread', 'main-thread GC pause per reply', 'replies'],
    lines,
  );
  const rows: Row[] = [];
  const io = runs.socketio;
  for (const kind of ['llm-chat', 'llm-chat-memory'] as const) {
    const ours = runs[kind];
    if (!ours) continue;
    const label = kind === 'llm-chat' ? 'SQLite' : 'memory';
    const list = [
      against(`burst (${label}): first chunk p99 (ms)`, ours['ttfcP99Ms']!, io?.['ttfcP99Ms'], 1.15, 'Socket.IO', 0),
      against(`burst (${label}): full reply p99 (ms)`, ours['fullP99Ms']!, io?.['fullP99Ms'], 1.1, 'Socket.IO', 0),
      against(`burst (${label}): server CPU per reply (ms)`, ours['cpuMsPerReply']!, io?.['cpuMsPerReply'], 1.5, 'Socket.IO', 3),
      against(`burst (${label}): KiB per connection (RSS)`, ours['rssPerConnectionKB']!, io?.['rssPerConnectionKB'], 1, 'Socket.IO'),
    ];
    // The targets are the default store's; the memory store's line is shown for comparison.
    if (kind === 'llm-chat-memory') for (const row of list) row.verdict = '';
    rows.push(...list, {
      figure: `burst (${label}): replies complete of ${sessions}`,
      ours: `${ours['completed']}`,
      target: 'all',
      verdict: verdict(ours['completed'] === ours['expected'] && ours['sessions'] === sessions),
    });
  }
  const ours = runs['llm-chat'];
  const before = runs['llm-chat-before'];
  if (ours && before) {
    // Two checkouts in turn, round by round: a change to the hot path, beside this machine's drift.
    for (const [figure, key, digits] of [
      ['first chunk p99 (ms)', 'ttfcP99Ms', 0],
      ['full reply p99 (ms)', 'fullP99Ms', 0],
      ['server CPU per reply (ms)', 'cpuMsPerReply', 3],
    ] as const) {
      rows.push({ figure: `burst (SQLite): ${figure}, this checkout / --before-root`, ours: n(ours[key], digits), baseline: `${n(before[key], digits)} (--before-root)`, ratio: ratio(ours[key]!, before[key]) });
    }
  }
  return { grid: table, rows };
}

export function sustainedRows(ours: Figures, base: Figures | undefined): Row[] {
  return [
    {
      figure: `sustained: ${ours['sessions']} sessions × 2 replies complete`,
      ours: `${ours['completed']}/${ours['expected']}`,
      baseline: base ? `${base['completed']}/${base['expected']} (bare ws)` : '',
      target: 'all',
      verdict: verdict(ours['completed'] === ours['expected']),
    },
    {
      figure: 'sustained: first chunk p50 / p99 (ms)',
      ours: `${n(ours['ttfcP50Ms'], 0)} / ${n(ours['ttfcP99Ms'], 0)}`,
      baseline: base ? `${n(base['ttfcP50Ms'], 0)} / ${n(base['ttfcP99Ms'], 0)} (bare ws)` : '',
      target: 'p99 < 600 ms',
      verdict: verdict(ours['ttfcP99Ms']! < 600),
    },
    {
      figure: 'sustained: server CPU per reply (ms)',
      ours: n(ours['cpuMsPerReply'], 3),
      baseline: base ? `${n(base['cpuMsPerReply'], 3)} (bare ws)` : '',
      ratio: ratio(ours['cpuMsPerReply']!, base?.['cpuMsPerReply']),
    },
  ];
}

export function saturateRows(ours: Figures, base: Figures | undefined): Row[] {
  return [
    {
      figure: `saturate: chunks/s, ${ours['sessions']} sessions, 0 ms`,
      ours: n(ours['chunksPerSecond']),
      baseline: base ? `${n(base['chunksPerSecond'])} (bare ws)` : '',
      ratio: ratio(ours['chunksPerSecond']!, base?.['chunksPerSecond']),
      target: '≥ 0.5× bare ws',
      verdict: base ? verdict(ours['chunksPerSecond']! >= 0.5 * base['chunksPerSecond']!) : '',
    },
    {
      figure: 'saturate: server CPU per chunk (busy share of the wall time: main thread; store thread)',
      ours: `${n(ours['cpuUsPerChunk'])} µs (${n(100 * ours['mainThreadBusyShare']!, 0)}%; ${n(100 * ours['storeThreadsBusyShare']!, 0)}%)`,
      baseline: base ? `${n(base['cpuUsPerChunk'])} µs (${n(100 * base['mainThreadBusyShare']!, 0)}%) (bare ws)` : '',
      ratio: ratio(ours['cpuUsPerChunk']!, base?.['cpuUsPerChunk']),
    },
  ];
}

export function gatewayRows(results: readonly GatewayResult[]): Row[] {
  const rows: Row[] = [];
  for (const { concurrency, upstream, llmChat, bareProxy } of results) {
    const at = `gateway @${concurrency}`;
    rows.push(
      // The floor: what relaying costs in Node with nothing else done.
      {
        figure: `${at}: a bare node:http proxy, req/s`,
        ours: n(bareProxy.requestsPerSecond),
        baseline: `${n(upstream.requestsPerSecond)} (upstream)`,
        ratio: ratio(bareProxy.requestsPerSecond, upstream.requestsPerSecond),
      },
      {
        figure: `${at}: a bare node:http proxy, added p50 / CPU per request (ms)`,
        ours: `${n(bareProxy.p50Ms - upstream.p50Ms, 2)} / ${n(bareProxy.cpuMsPerRequest, 3)}`,
      },
      {
        figure: `${at}: streamed /v1 req/s`,
        ours: n(llmChat.requestsPerSecond),
        baseline: `${n(upstream.requestsPerSecond)} (upstream)`,
        ratio: ratio(llmChat.requestsPerSecond, upstream.requestsPerSecond),
        ...(concurrency === 32 ? { target: '≥ 0.35× upstream', verdict: verdict(llmChat.requestsPerSecond >= 0.35 * upstream.requestsPerSecond) } : {}),
      },
      {
        figure: `${at}: latency p50 / p99 (ms)`,
        ours: `${n(llmChat.p50Ms, 2)} / ${n(llmChat.p99Ms, 2)}`,
        baseline: `${n(upstream.p50Ms, 2)} / ${n(upstream.p99Ms, 2)} (upstream)`,
      },
      {
        figure: `${at}: added latency p50 / p99 (ms)`,
        ours: `${n(llmChat.p50Ms - upstream.p50Ms, 2)} / ${n(llmChat.p99Ms - upstream.p99Ms, 2)}`,
        ...(concurrency === 4 ? { target: 'p50 ≤ 2 ms', verdict: verdict(llmChat.p50Ms - upstream.p50Ms <= 2) } : {}),
      },
      {
        figure: `${at}: server CPU per request (ms)`,
        ours: n(llmChat.cpuMsPerRequest, 3),
        baseline: `${n(upstream.cpuMsPerRequest, 3)} (upstream's own)`,
        target: '≤ 0.6 ms',
        verdict: verdict(llmChat.cpuMsPerRequest <= 0.6),
      },
      {
        figure: `${at}: failed requests`,
        ours: `${llmChat.failed}`,
        baseline: `${upstream.failed} (upstream)`,
        target: '0',
        verdict: verdict(llmChat.failed === 0 && upstream.failed === 0),
      },
    );
  }
  return rows;
}

export function actorRows(actors: Figures): Row[] {
  return [
    { figure: `actors: ${formatNumber(actors['sessions']!)} sessions activated (s)`, ours: n(actors['activationSeconds'], 2), target: '≤ 6 s', verdict: verdict(actors['activationSeconds']! <= 6) },
    { figure: 'actors: CPU time of that activation (s)', ours: n(actors['activationCpuSeconds'], 2) },
    { figure: 'actors: heap per idle session (KB)', ours: n(actors['heapPerSessionKB'], 2), target: '≤ 7 KB', verdict: verdict(actors['heapPerSessionKB']! <= 7) },
    { figure: 'actors: RSS per idle session (KB)', ours: n(actors['rssPerSessionKB'], 2) },
    {
      figure: `actors: events/s to one session at ${formatNumber(actors['sessions']!)} vs 10`,
      ours: `${n(actors['oneSessionEventsPerSecondAtN'])} vs ${n(actors['oneSessionEventsPerSecondAt10'])}`,
      ratio: ratio(actors['oneSessionEventsPerSecondAtN']!, actors['oneSessionEventsPerSecondAt10']),
      target: '≈ 1×',
      verdict: verdict(actors['oneSessionEventsPerSecondAtN']! >= 0.7 * actors['oneSessionEventsPerSecondAt10']!),
    },
  ];
}

export function idleRows(ours: Figures, base: Figures | undefined, held: { seconds: number; sessions: number }): Row[] {
  return [
    { figure: `idle: sessions held ${held.seconds} s (failed)`, ours: `${ours['aliveAtEnd']} (${ours['failed']})`, baseline: base ? `${base['aliveAtEnd']} (${base['failed']}) (bare ws)` : '', target: `${held.sessions}`, verdict: verdict(ours['aliveAtEnd'] === held.sessions) },
    { figure: 'idle: RSS per connected session (KB)', ours: n(ours['rssPerSessionKB'], 2), baseline: base ? `${n(base['rssPerSessionKB'], 2)} (bare ws)` : '', ratio: ratio(ours['rssPerSessionKB']!, base?.['rssPerSessionKB']) },
    { figure: 'idle: heap per connected session (KB)', ours: n(ours['heapPerSessionKB'], 2), baseline: base ? `${n(base['heapPerSessionKB'], 2)} (bare ws)` : '', ratio: ratio(ours['heapPerSessionKB']!, base?.['heapPerSessionKB']) },
    { figure: 'idle: event-loop delay p99 (ms)', ours: n(ours['lagP99Ms']), baseline: base ? `${n(base['lagP99Ms'])} (bare ws)` : '' },
  ];
}

export function streamRows(ours: Figures, base: Figures | undefined, spreadMs: number): Row[] {
  const b = (key: string, digits = 1) => (base ? `${n(base[key], digits)} (bare ws)` : '');
  return [
    { figure: `stream: replies complete of ${ours['expected']} (spread ${spreadMs} ms)`, ours: `${ours['completed']}`, baseline: b('completed', 0), target: 'all', verdict: verdict(ours['completed'] === ours['expected']) },
    { figure: 'stream: time to first chunk p50 / p99 / max (ms)', ours: `${n(ours['ttfcP50Ms'])} / ${n(ours['ttfcP99Ms'])} / ${n(ours['ttfcMaxMs'])}`, baseline: base ? `${n(base['ttfcP50Ms'])} / ${n(base['ttfcP99Ms'])} / ${n(base['ttfcMaxMs'])}` : '' },
    { figure: 'stream: chunk lateness p50 / p99 (ms)', ours: `${n(ours['latenessP50Ms'])} / ${n(ours['latenessP99Ms'])}`, baseline: base ? `${n(base['latenessP50Ms'])} / ${n(base['latenessP99Ms'])}` : '' },
    { figure: 'stream: chunks/s delivered', ours: n(ours['chunksPerSecond']), baseline: b('chunksPerSecond'), ratio: ratio(ours['chunksPerSecond']!, base?.['chunksPerSecond']) },
    { figure: 'stream: RSS per streaming session (KB)', ours: n(ours['rssPerSessionStreamingKB'], 2), baseline: b('rssPerSessionStreamingKB', 2), ratio: ratio(ours['rssPerSessionStreamingKB']!, base?.['rssPerSessionStreamingKB']) },
    { figure: 'stream: event-loop delay p99 (ms)', ours: n(ours['lagP99Ms']), baseline: b('lagP99Ms') },
    { figure: 'stream: server CPU per reply (ms)', ours: n(ours['cpuMsPerReply'], 3), baseline: b('cpuMsPerReply', 3), ratio: ratio(ours['cpuMsPerReply']!, base?.['cpuMsPerReply']) },
  ];
}

export function churnRows(churn: Figures): Row[] {
  return [
    { figure: `churn: ${formatNumber(churn['sessions']!)} sessions (sessions/s)`, ours: n(churn['sessionsPerSecond']) },
    { figure: 'churn: RSS before → after (MB)', ours: `${n(churn['rssBeforeMB'])} → ${n(churn['rssAfterMB'])}`, ratio: `${churn['rssGrowthPercent']! >= 0 ? '+' : ''}${n(churn['rssGrowthPercent'])}%`, target: '≤ +10%', verdict: verdict(churn['rssGrowthPercent']! <= 10) },
    { figure: 'churn: heap before → after (MB)', ours: `${n(churn['heapBeforeMB'])} → ${n(churn['heapAfterMB'])}` },
  ];
}
