/**
 * The `abuse` scenario: hostile peers against a server in a child process
 * (test/support/fuzzTarget.ts, run with --expose-gc), then the edge's books:
 * slots, sockets, streams and unsent bytes still held once the abuse is over
 * (all must be 0), and property-based fuzzing of every surface with the
 * count of cases run and the server's heap before and after.
 * The peers and the fuzzing are the test suite's own (test/support), so the
 * bench and the tests abuse the server the same way.
 */
import type { Socket } from 'node:net';
import { fuzzHttp, fuzzWs, restCase, v1Case } from '../test/support/edgeFuzz.ts';
import { startFuzzTarget } from '../test/support/fuzzClient.ts';
import type { FuzzTarget } from '../test/support/fuzzClient.ts';
import { halfOpenPeer, hangUpAfterUpgrade, hangUpDuringHandshake, hangUpSse, malformedUpgrade } from '../test/support/hostilePeers.ts';

/** Cases per surface run before the heap is measured (the test suite's fuzzing warms up as many). */
const FUZZ_WARM_UP = 200;
/** The longest limiter window (per minute), and a little. */
const LIMITER_WINDOW_MS = 65_000;
export interface AbuseConfig {
  /** Malformed upgrades and early hang-ups, in total. */
  abuse: number;
  /** Half-open peers (never answer a ping) and slow consumers (never read). */
  halfOpen: number;
  slowConsumers: number;
  /** Fuzz cases per surface. */
  fuzzRuns: number;
}

export interface AbuseResult {
  abused: number;
  halfOpenDropped: number;
  slowConsumersClosed: number;
  /** What the edge held once the abuse was over (all must be 0). */
  heldAfter: { slots: number; ws: number; wsTracked: number; sse: number; bufferedBytes: number };
  drainSeconds: number;
  fuzzCases: { rest: number; ws: number; v1: number };
  heapBeforeMB: number;
  heapAfterMB: number;
  /** The heap once the limiters' windows that the fuzzing opened have ended. */
  heapSettledMB: number;
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(name))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

async function deleteAllSessions(base: string): Promise<void> {
  for (;;) {
    const page = (await (await fetch(`${base}/api/sessions?limit=200`)).json()) as { sessions: { sessionId: string }[] };
    if (page.sessions.length === 0) return;
    for (const { sessionId } of page.sessions) await fetch(`${base}/api/sessions/${sessionId}`, { method: 'DELETE' });
  }
}

async function newSession(base: string): Promise<string> {
  return String(((await (await fetch(`${base}/api/sessions`, { method: 'POST' })).json()) as { sessionId: string }).sessionId);
}

/** Malformed upgrades, hang-ups mid-handshake, after the upgrade and during SSE activation, at most 100 at a time. */
async function hangUps(target: FuzzTarget, total: number): Promise<void> {
  const port = Number(new URL(target.url).port);
  const sessionId = await newSession(target.url);
  const kinds = [
    (index: number) => malformedUpgrade(port, index),
    () => hangUpDuringHandshake(port),
    () => hangUpAfterUpgrade(port),
    () => hangUpAfterUpgrade(port, `/ws?sessionId=${sessionId}`),
    () => hangUpSse(port, `/sse/${sessionId}`, 1),
  ];
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < total; index = next++) await kinds[index % kinds.length]!(index);
  };
  await Promise.all(Array.from({ length: 100 }, worker));
}

export async function runAbuse(config: AbuseConfig, log: (line: string) => void): Promise<AbuseResult> {
  // Short ping and a small per-connection cap, so dead peers and slow readers show within seconds.
  const target = await startFuzzTarget({ wsPingMs: 500, maxBufferedBytes: 256 * 1024, simChunks: 100, maxConnections: 5000 });
  try {
    const port = Number(new URL(target.url).port);
    log(`abuse: ${config.abuse} malformed upgrades and early hang-ups`);
    await hangUps(target, config.abuse);

    log(`abuse: ${config.halfOpen} half-open peers, ${config.slowConsumers} slow consumers`);
    const halfOpen: Socket[] = [];
    for (let index = 0; index < config.halfOpen; index += 1) halfOpen.push(await halfOpenPeer(port));
    let halfOpenDropped = 0;
    for (const socket of halfOpen) socket.once('close', () => (halfOpenDropped += 1));
    const watched = await newSession(target.url);
    const slow: Socket[] = [];
    for (let index = 0; index < config.slowConsumers; index += 1) slow.push(await halfOpenPeer(port, `/ws?sessionId=${watched}`, { paused: true }));
    // 100 chunks × 60 kB ≈ 6 MB per reader: far past the 256 KiB cap.
    await fetch(`${target.url}/api/sessions/${watched}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 's'.repeat(60_000) }) });

    const started = Date.now();
    let held = await target.edge();
    while ((held.slots > 0 || held.ws > 0 || held.wsTracked > 0 || held.sse > 0 || held.bufferedBytes > 0) && Date.now() - started < 30_000) {
      await wait(100);
      held = await target.edge();
    }
    const drainSeconds = (Date.now() - started) / 1000;
    const slowConsumersClosed = await metric(target.url, 'llm_chat_backpressure_disconnects_total');
    for (const socket of [...halfOpen, ...slow]) socket.destroy();
    log(`abuse: edge after ${drainSeconds.toFixed(1)} s: ${JSON.stringify(held)}`);

    log(`abuse: fuzzing ${config.fuzzRuns} cases per surface`);
    const wsUrl = `${target.url.replace('http', 'ws')}/ws`;
    // A warm-up first, as the test suite's fuzzing does: what the first cases load once (the JIT's
    // code, lazily required modules) is not what the fuzzing keeps.
    await fuzzHttp(target.url, restCase, FUZZ_WARM_UP, await newSession(target.url));
    await fuzzWs(wsUrl, FUZZ_WARM_UP, await newSession(target.url));
    await fuzzHttp(target.url, v1Case, FUZZ_WARM_UP, await newSession(target.url));
    await deleteAllSessions(target.url);
    const heapBefore = await target.heap();
    const rest = await fuzzHttp(target.url, restCase, config.fuzzRuns, await newSession(target.url));
    const ws = await fuzzWs(wsUrl, config.fuzzRuns, await newSession(target.url));
    const v1 = await fuzzHttp(target.url, v1Case, config.fuzzRuns, await newSession(target.url));
    await deleteAllSessions(target.url);
    const heapAfter = await target.heap();
    // Per-session and per-client limiter windows (a minute) hold an entry for each session the
    // fuzzing made; they end on their own. What is left after them is what the fuzzing kept.
    log(`abuse: heap after fuzzing ${(heapAfter / 1e6).toFixed(1)} MB; measuring again once the limiters' minute windows ended`);
    await wait(LIMITER_WINDOW_MS);
    const heapSettled = await target.heap();
    return {
      abused: config.abuse,
      halfOpenDropped,
      slowConsumersClosed,
      heldAfter: { slots: held.slots, ws: held.ws, wsTracked: held.wsTracked, sse: held.sse, bufferedBytes: held.bufferedBytes },
      drainSeconds,
      fuzzCases: { rest: rest.cases, ws: ws.cases, v1: v1.cases },
      heapBeforeMB: heapBefore / 1e6,
      heapAfterMB: heapAfter / 1e6,
      heapSettledMB: heapSettled / 1e6,
    };
  } finally {
    await target.close();
  }
}
