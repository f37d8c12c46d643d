/**
 * Two checkouts' `/v1` cost, side by side: one fast fake upstream, one
 * llm-chat server started from each checkout (its own bench/serverProcess.ts
 * and src/, the gateway scenario's options), and the load alternating
 * between them in short rounds (A B, then B A, ...), so a slow spell of this
 * shared machine falls on both alike. One gateway run after another moved the
 * same commit's CPU per request by ±20% here; interleaved, the same checkout
 * against itself (16 rounds at 32 concurrent) differed by 5%, so a change
 * under that is noise. Prints each one's median and lowest server CPU per
 * request, the median p50 latency, and B's over A's.
 *   node --import tsx bench/gatewayAb.ts [--rounds 12] [--concurrency 4] [--seconds 1.5] CHECKOUT_A CHECKOUT_B
 * Each checkout needs its node_modules (a symlink to this one's will do).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GATEWAY_BODY, GATEWAY_WARM_UP_MS, gatewayServerOptions } from './gateway.ts';
import { Child, SERVER_NODE_FLAGS } from './processes.ts';
import { summarize } from './stats.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '12' },
    concurrency: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '1.5' },
  },
});
if (positionals.length !== 2) {
  process.stderr.write('usage: node --import tsx bench/gatewayAb.ts [--rounds N] [--concurrency C] [--seconds S] CHECKOUT_A CHECKOUT_B\n');
  process.exit(2);
}
const rounds = Number(values.rounds);
const concurrency = Number(values.concurrency);
const roundMs = Number(values.seconds) * 1000;

interface Side {
  root: string;
  child: Child;
  port: number;
  dataDir: string;
  cpuMs: number[];
  p50Ms: number[];
}

const children: Child[] = [];
const sides: Side[] = [];
try {
  const upstream = new Child('./fastUpstream.ts');
  children.push(upstream);
  const upstreamPort = Number((await upstream.next('ready', 30_000))['port']);
  const options = gatewayServerOptions(upstreamPort);
  for (const root of positionals.map((path) => resolve(path))) {
    const dataDir = mkdtempSync(join(tmpdir(), 'llm-chat-ab-'));
    const child = new Child(join(root, 'bench', 'serverProcess.ts'), {
      env: { BENCH_KIND: 'llm-chat', BENCH_STORE: 'sqlite', BENCH_DATA_DIR: dataDir, BENCH_OPTIONS: JSON.stringify(options) },
      nodeFlags: SERVER_NODE_FLAGS,
    });
    children.push(child);
    const port = Number((await child.next('ready', 30_000))['port']);
    sides.push({ root, child, port, dataDir, cpuMs: [], p50Ms: [] });
  }
  const loader = new Child('./httpLoad.ts');
  children.push(loader);
  await loader.next('ready', 30_000);
  const load = (port: number, durationMs: number) =>
    loader.ask({ type: 'load', url: `http://127.0.0.1:${port}/v1/chat/completions`, body: GATEWAY_BODY, concurrency, durationMs }, 'loaded', durationMs + 60_000);
  const cpuOf = async (side: Side) => Number((await side.child.ask({ type: 'stats' }, 'stats'))['cpuMs']);

  // llm-chat needs ~3 s of load before its JIT settles (bench/gateway.ts).
  for (const side of sides) await load(side.port, GATEWAY_WARM_UP_MS);
  for (let round = 0; round < rounds; round += 1) {
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      const before = await cpuOf(side);
      const result = await load(side.port, roundMs);
      const cpuMs = (await cpuOf(side)) - before;
      side.cpuMs.push(cpuMs / Math.max(1, Number(result['completed'])));
      side.p50Ms.push(summarize(result['latencies'] as number[]).p50);
    }
  }
  const median = (list: number[]) => summarize(list).p50;
  process.stdout.write(`/v1 streamed, ${concurrency} concurrent, ${rounds} rounds of ${roundMs / 1000} s each, interleaved\n`);
  for (const side of sides) {
    process.stdout.write(
      `${side.root}: server CPU per request median ${median(side.cpuMs).toFixed(3)} ms, lowest ${Math.min(...side.cpuMs).toFixed(3)} ms; latency p50 median ${median(side.p50Ms).toFixed(2)} ms\n`,
    );
  }
  const [a, b] = sides as [Side, Side];
  process.stdout.write(`B / A: CPU ${(median(b.cpuMs) / median(a.cpuMs)).toFixed(3)}×, p50 ${(median(b.p50Ms) / median(a.p50Ms)).toFixed(3)}×\n`);
} finally {
  for (const child of children) child.kill();
  for (const side of sides) rmSync(side.dataDir, { recursive: true, force: true });
}
