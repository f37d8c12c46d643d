/**
 * The cluster scenario's load: generator processes holding WebSocket
 * sessions on one port, then streaming a reply on a fraction of them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startGenerators } from './processes.ts';
import type { Child } from './processes.ts';
import { summarize } from './stats.ts';

/** The part of the scenario's configuration the fleet reads. */
export interface FleetConfig {
  perGenerator: number;
  rate: number;
}


export interface Fleet {
  generators: { child: Child; address: string }[];
  ok: number;
  failed: number;
  /** Connections refused for a passing reason and tried again (each counted once per retry). */
  retried: number;
  errors: Record<string, number>;
}

/**
 * A refused client (`overloaded` while a worker sheds, `store_unavailable`…)
 * tries again as the chat page does (which never gives up), here up to this
 * many times with backoff (1, 2, 4, 8, then 16 s): what is held is what
 * clients that retry get within about two minutes.
 */
const CONNECT_RETRIES = 8;

/** Open, stream on and close fleets of sessions; each generator started is pushed to `children`. */
export function createClusterFleet(config: FleetConfig, log: (line: string) => void, children: Child[]) {
  async function connectFleet(port: number, sessions: number): Promise<Fleet> {
    const count = Math.max(1, Math.ceil(sessions / config.perGenerator));
    const generators = await startGenerators(count);
    children.push(...generators.map(({ child }) => child));
    const progress = new Map<Child, number>();
    for (const { child } of generators) child.onProgress = (message) => progress.set(child, Number(message['ok'] ?? message['completed'] ?? 0));
    const ticker = setInterval(() => log(`  ${[...progress.values()].reduce((a, b) => a + b, 0)}/${sessions}`), 5000);
    const results = await Promise.all(
      generators.map(({ child, address }, index) => {
        const share = Math.floor(sessions / count) + (index < sessions % count ? 1 : 0);
        return child.ask({ type: 'connect', url: `ws://127.0.0.1:${port}/ws`, client: 'ws', count: share, ratePerSecond: config.rate / count, localAddress: address, retries: CONNECT_RETRIES }, 'connected', 1_800_000);
      }),
    );
    clearInterval(ticker);
    const errors: Record<string, number> = {};
    for (const result of results) for (const [code, n] of Object.entries(result['errors'] as Record<string, number>)) errors[code] = (errors[code] ?? 0) + n;
    const total = (field: string) => results.reduce((sum, r) => sum + Number(r[field] ?? 0), 0);
    return { generators, ok: total('ok'), failed: total('failed'), retried: total('retried'), errors };
  }

  async function closeFleet(fleet: Fleet): Promise<number> {
    const replies = await Promise.all(fleet.generators.map(({ child }) => child.ask({ type: 'close' }, 'closed')));
    for (const { child } of fleet.generators) child.kill();
    return replies.reduce((sum, reply) => sum + Number(reply['alive'] ?? 0), 0);
  }

  async function streamPhase(fleet: Fleet, fraction: number, during?: () => Promise<void>) {
    const intervalMs = 400;
    const spreadMs = 2000;
    const pending = Promise.all(
      fleet.generators.map(({ child }) =>
        child.ask({ type: 'stream', messages: 1, intervalMs, spreadMs, fraction, timeoutMs: 120_000 }, 'streamed', 300_000),
      ),
    );
    if (during) {
      await sleep(spreadMs + 2.5 * intervalMs);
      await during();
    }
    const results = await pending;
    // Why replies did not complete: error frames and closes seen while streaming, summed.
    const tally = (field: string) => {
      const total: Record<string, number> = {};
      for (const result of results) for (const [why, n] of Object.entries((result[field] ?? {}) as Record<string, number>)) total[why] = (total[why] ?? 0) + n;
      return total;
    };
    const errors = tally('errors');
    const closed = tally('closed');
    if (Object.keys(errors).length > 0 || Object.keys(closed).length > 0) log(`  while streaming: error frames ${JSON.stringify(errors)}, closes ${JSON.stringify(closed)}`);
    const chunks = results.reduce((sum, r) => sum + Number(r['chunks']), 0);
    const elapsed = Math.max(...results.map((r) => Number(r['elapsedMs'])));
    const ttfc = summarize(results.flatMap((r) => r['ttfc'] as number[]));
    const lateness = summarize(results.flatMap((r) => r['lateness'] as number[]));
    return {
      streaming: results.reduce((sum, r) => sum + Number(r['expected']), 0),
      completed: results.reduce((sum, r) => sum + Number(r['completed']), 0),
      chunks,
      chunksPerSecond: chunks / (elapsed / 1000),
      elapsedMs: elapsed,
      ttfcP50Ms: ttfc.p50,
      ttfcP99Ms: ttfc.p99,
      latenessP50Ms: lateness.p50,
      latenessP99Ms: lateness.p99,
    };
  }

  return { connectFleet, closeFleet, streamPhase };
}
