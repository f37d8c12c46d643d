import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuzzHttp, fuzzWs, restCase, v1Case } from './support/edgeFuzz.ts';
import type { FuzzReport } from './support/edgeFuzz.ts';
import { startFuzzTarget } from './support/fuzzClient.ts';
import type { FuzzTarget } from './support/fuzzClient.ts';

/** Cases per surface: 1,000 in CI; FUZZ_RUNS for more (the abuse bench runs more). */
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 1000);
const WARM_UP = 150;

let target: FuzzTarget;
beforeAll(async () => {
  target = await startFuzzTarget();
});
afterAll(async () => {
  await target?.close();
});

async function newSession(): Promise<string> {
  const response = await fetch(`${target.url}/api/sessions`, { method: 'POST' });
  return String(((await response.json()) as { sessionId: string }).sessionId);
}

/** Deletes every session, so what is left on the heap is what the fuzzing itself kept. */
async function deleteAllSessions(): Promise<void> {
  for (;;) {
    const page = (await (await fetch(`${target.url}/api/sessions?limit=200`)).json()) as { sessions: { sessionId: string }[] };
    if (page.sessions.length === 0) return;
    for (const { sessionId } of page.sessions) await fetch(`${target.url}/api/sessions/${sessionId}`, { method: 'DELETE' });
  }
}

/** Warm up (JIT, lazy modules), clean up, measure; run the real thing, clean up, measure again. */
async function withHeapCheck(run: (runs: number, sessionId: string) => Promise<FuzzReport>): Promise<FuzzReport> {
  await run(WARM_UP, await newSession());
  await deleteAllSessions();
  const before = await target.heap();
  const report = await run(RUNS, await newSession());
  await deleteAllSessions();
  const after = await target.heap();
  expect((await fetch(`${target.url}/healthz`)).status).toBe(200);
  // Sockets and streams all given back (the WS fuzz connection has closed by now).
  for (let attempt = 0; attempt < 50 && (await target.edge()).slots > 0; attempt += 1) await new Promise((resolve) => setTimeout(resolve, 20));
  expect(await target.edge()).toMatchObject({ slots: 0, ws: 0, wsTracked: 0, sse: 0, sessions: 0 });
  expect(after, `heap ${(before / 1e6).toFixed(1)} MB → ${(after / 1e6).toFixed(1)} MB`).toBeLessThanOrEqual(before * 1.1);
  return report;
}

describe(`fuzzing the edge (${RUNS} cases per surface; FUZZ_RUNS for more)`, () => {
  it('REST bodies and query strings: every answer a documented status, hostile ones 400, clean ones served; alive; heap back within 10%', async () => {
    const report = await withHeapCheck((runs, sessionId) => fuzzHttp(target.url, restCase, runs, sessionId));
    expect(report.cases).toBe(RUNS);
    expect(report.byExpectation.refused).toBeGreaterThan(RUNS / 10);
    expect(report.byExpectation.served).toBeGreaterThan(RUNS / 10);
  }, 120_000);

  it('WebSocket frames: every answer documented, hostile ones bad_request, clean ones accepted; the socket stays open; heap back within 10%', async () => {
    const wsUrl = `${target.url.replace('http', 'ws')}/ws`;
    const report = await withHeapCheck((runs, sessionId) => fuzzWs(wsUrl, runs, sessionId));
    expect(report.cases).toBe(RUNS);
    expect(report.byExpectation.refused).toBeGreaterThan(RUNS / 10);
  }, 120_000);

  it('/v1 bodies: every answer documented, hostile ones 400, clean ones 200; heap back within 10%', async () => {
    const report = await withHeapCheck((runs, sessionId) => fuzzHttp(target.url, v1Case, runs, sessionId));
    expect(report.cases).toBe(RUNS);
    expect(report.byExpectation.refused).toBeGreaterThan(RUNS / 10);
  }, 120_000);
});
