/**
 * Instructions per reply, counted, not timed: a change too small for the
 * burst A/B (on this shared machine a checkout against itself there moves by
 * ±12%) shows here. The in-process burst (a llm-chat server and N real `ws`
 * clients in one process, inProcessClients.ts) runs under valgrind's
 * callgrind, which counts every instruction of every thread (the main
 * thread, SQLite's writer thread, V8's GC and compiler helpers; the clients'
 * too, the same for both sides of an A/B). Counting starts after the warm-up
 * rounds (the start-up, module loading and first compilations are not a
 * reply's) and stops after the measured ones. V8 runs `--single-threaded`
 * (its compiler and GC work on the main thread; with its concurrent threads
 * two runs of the same code differed by 4–10%), and 60 warm-up rounds let
 * its optimizing compiler settle (after 5, runs still differed by 10%).
 * Counts of separate runs still move by up to 16%: valgrind makes the
 * timers late, and how late changes what a round does (group commits hold
 * more). So compare side by side: `--against DIR` counts the checkout in DIR
 * (its bench/inProcessClients.ts and src/) at the same time, and prints this
 * one's count over DIR's. This checkout against itself: 1.023×, and 1.003×
 * without V8's compiling (the JIT's own work, printed apart: the steadier
 * figure).
 *   node --import tsx bench/instructionCount.ts [--against DIR] [--sessions 200] [--warm-up 60] [--rounds 8] [--store sqlite|memory] [--interval-ms 40] [--keep DIR]
 * Needs valgrind (Debian's package: callgrind, callgrind_control); about 70 s.
 * `--scenario v1` counts streamed `/v1` requests instead: the gateway
 * figures' llm-chat (the fast upstream, SQLite) in the counted process, the
 * upstream and the load generator (`--concurrency`, default 4) in processes
 * of their own, so only the server's instructions are counted, per
 * completed request; `--warm-up-s` (default 40) of load before counting,
 * `--measure-s` (default 20) counted. About two minutes.
 * `--keep DIR` leaves callgrind's output there (`callgrind_annotate` reads
 * it: native code by function, V8's generated code as `???`).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { SERVER_NODE_FLAGS } from './processes.ts';

/** Where the instructions went, by the native function that ran them (callgrind sees V8's generated code only as addresses). */
const AREAS: [RegExp, string][] = [
  [/v8::internal::(compiler|maglev|turboshaft)::|v8::internal::(Parser|Scanner|PreParser|Compiler|OptimizingCompileDispatcher)|v8::internal::interpreter::Bytecode(Generator|ArrayBuilder)/, 'V8 compiling (optimizing compiler, parser, bytecode)'],
  [/better_sqlite3\.node/, 'SQLite (better-sqlite3)'],
  [/Scaveng|Marking|MarkCompact|Sweep|Evacuat|v8::internal::Heap::|heap::base|GCTracer|MemoryAllocator|RememberedSet|SlotSet/, 'GC'],
  [/ValueSerializer|ValueDeserializer/, 'structured clone (postMessage)'],
  [/^\?\?\?:0x[0-9a-f]+ \[\?\?\?\]/, 'JavaScript, optimized or baseline code (V8-generated)'],
  [/Builtins_/, 'V8 builtins and interpreter'],
  [/v8::|v8_inspector/, 'V8 runtime (slow paths: property lookups, allocation, API calls)'],
  [/libc\.so/, 'libc (memcpy, malloc)'],
  [/node::|uv_|libuv|\[\/usr\/bin\/node\]/, 'Node C++ and libuv'],
];

function areasOf(dir: string): Map<string, number> {
  const areas = new Map<string, number>();
  for (const file of readdirSync(dir).filter((name) => name.startsWith('callgrind.out.'))) {
    const annotated = execFileSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', join(dir, file)], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    for (const line of annotated.split('\n')) {
      const match = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line);
      if (!match || match[2]!.includes('PROGRAM TOTALS')) continue;
      const area = AREAS.find(([pattern]) => pattern.test(match[2]!))?.[1] ?? 'other';
      areas.set(area, (areas.get(area) ?? 0) + Number(match[1]!.replaceAll(',', '')));
    }
  }
  return areas;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '200' },
    'warm-up': { type: 'string', default: '60' },
    rounds: { type: 'string', default: '8' },
    store: { type: 'string', default: 'sqlite' },
    'interval-ms': { type: 'string', default: '40' },
    keep: { type: 'string' },
    against: { type: 'string' },
    scenario: { type: 'string', default: 'burst' },
    concurrency: { type: 'string', default: '4' },
    'warm-up-s': { type: 'string', default: '40' },
    'measure-s': { type: 'string', default: '20' },
  },
});
if (values.scenario !== 'burst' && values.scenario !== 'v1') throw new Error(`--scenario is burst or v1, not ${values.scenario}`);
const v1 = values.scenario === 'v1';
/** Where the counted process writes how many /v1 requests the measured load completed. */
const REQUESTS_FILE = 'requests';
const sessions = Number(values.sessions);
const rounds = Number(values.rounds);

const count = (on: boolean) => execFileSync('callgrind_control', ['--instr=' + (on ? 'on' : 'off'), String(process.pid)], { stdio: 'ignore' });

if (process.env['BENCH_UNDER_CALLGRIND'] === '1' && v1) {
  // Inside valgrind: the server of the checkout named (this one, or --against's), counted around the measured load only.
  const { startInProcessV1 } = await import('./inProcessV1.ts');
  const server = await startInProcessV1({ root: process.env['BENCH_SOURCE_ROOT'] ?? ROOT, concurrency: Number(values.concurrency) });
  try {
    await server.load(Number(values['warm-up-s']) * 1000, 'ignored');
    count(true);
    const completed = await server.load(Number(values['measure-s']) * 1000);
    count(false);
    writeFileSync(join(process.env['BENCH_COUNT_OUT']!, REQUESTS_FILE), String(completed));
  } finally {
    await server.close();
  }
  process.exit(0);
}

if (process.env['BENCH_UNDER_CALLGRIND'] === '1') {
  // Inside valgrind: the burst of the checkout named (this one, or --against's), counted around the measured rounds only.
  const root = process.env['BENCH_SOURCE_ROOT'] ?? ROOT;
  const { startInProcessBurst } = (await import(pathToFileURL(join(root, 'bench', 'inProcessClients.ts')).href)) as typeof import('./inProcessClients.ts');
  const burst = await startInProcessBurst({ sessions, simIntervalMs: Number(values['interval-ms']), storeKind: values.store === 'memory' ? 'memory' : 'sqlite' });
  try {
    for (let round = 0; round < Number(values['warm-up']); round += 1) await burst.round();
    count(true);
    for (let round = 0; round < rounds; round += 1) await burst.round();
    count(false);
  } finally {
    // Its server, clients and SQLite file go whatever happened (callgrind_control missing, say).
    await burst.close();
  }
  process.exit(0);
}

interface Counted {
  root: string;
  instructions: number;
  /** What the count is divided by: replies (the burst), or completed requests (v1). */
  units: number;
  areas: Map<string, number>;
}

/** One checkout's burst under callgrind: its instructions in the measured rounds, by area. */
async function counted(root: string, out: string): Promise<Counted> {
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(
      'valgrind',
      ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${join(out, 'callgrind.out.%p')}`, process.execPath, ...SERVER_NODE_FLAGS, '--single-threaded', '--import', 'tsx', fileURLToPath(import.meta.url), ...process.argv.slice(2)],
      { env: { ...process.env, BENCH_UNDER_CALLGRIND: '1', BENCH_SOURCE_ROOT: root, BENCH_COUNT_OUT: out }, stdio: ['ignore', 'inherit', 'pipe'] },
    );
    let errors = '';
    child.stderr.on('data', (data: Buffer) => (errors += data.toString()));
    child.on('error', (error) => reject(new Error(`valgrind could not start (apt-get install valgrind): ${error.message}`)));
    child.on('exit', (exitCode) => {
      if (exitCode !== 0) process.stderr.write(errors);
      resolve(exitCode);
    });
  });
  if (code !== 0) throw new Error(`the count of ${root} failed (exit ${code})`);
  // callgrind writes one file per process (node's own, here); its `totals:` line, at the end, counts the measured rounds.
  const instructions = readdirSync(out)
    .filter((file) => file.startsWith('callgrind.out.'))
    .reduce((sum, file) => sum + Number(/^totals: (\d+)/m.exec(readFileSync(join(out, file), 'utf8'))?.[1] ?? 0), 0);
  if (instructions === 0) throw new Error(`callgrind counted nothing in ${out}: callgrind_control could not switch counting on`);
  const units = v1 ? Number(readFileSync(join(out, REQUESTS_FILE), 'utf8')) : sessions * rounds;
  if (!(units > 0)) throw new Error(`nothing was measured in ${root}`);
  return { root, instructions, units, areas: areasOf(out) };
}

const started = Date.now();
const roots = [resolve(ROOT), ...(values.against ? [resolve(values.against)] : [])];
const outs = roots.map((_, index) => (values.keep ? join(values.keep, String(index)) : mkdtempSync(join(tmpdir(), 'llm-chat-callgrind-'))));
for (const out of outs) mkdirSync(out, { recursive: true });
// Side by side, at the same time: valgrind's slowness makes the timers late, and how late moves what a
// round does (group commits hold more); two checkouts counted together meet the same lateness.
let results: Counted[];
try {
  results = await Promise.all(roots.map((root, index) => counted(root, outs[index]!)));
} finally {
  if (!values.keep) for (const out of outs) rmSync(out, { recursive: true, force: true });
}

const unit = v1 ? 'request' : 'reply';
const perUnit = (result: Counted, count: number) => `${(count / result.units / 1e6).toFixed(3)} M`;
const compilingOf = (result: Counted) => [...result.areas].find(([area]) => area.startsWith('V8 compiling'))?.[1] ?? 0;
const elapsed = `${Math.round((Date.now() - started) / 1000)} s`;
if (v1) {
  console.log(`streamed /v1, ${values.concurrency} concurrent, ${values['measure-s']} s counted after ${values['warm-up-s']} s of warm-up, the server only, every thread (${elapsed}):`);
} else {
  console.log(`${values.store} store, ${sessions} sessions × ${rounds} rounds after ${values['warm-up']} warm-up rounds (${values['interval-ms']} ms between chunks), server and clients, every thread (${elapsed}):`);
}
for (const result of results) {
  const counted = v1 ? ` (${result.units} requests)` : '';
  console.log(`${result.root}: ${perUnit(result, result.instructions)} instructions per ${unit}${counted}, ${perUnit(result, result.instructions - compilingOf(result))} without V8's compiling (the JIT's own work, which moves between identical runs)`);
  for (const [area, count] of [...result.areas].sort((a, b) => b[1] - a[1])) console.log(`  ${((count / result.instructions) * 100).toFixed(1).padStart(5)}%  ${perUnit(result, count).padStart(8)}  ${area}`);
}
const [ours, theirs] = results;
if (ours && theirs) {
  const ratio = (a: number, b: number) => (a / ours.units / (b / theirs.units)).toFixed(3);
  console.log(`this checkout / ${theirs.root}, per ${unit}: ${ratio(ours.instructions, theirs.instructions)}×, without V8's compiling ${ratio(ours.instructions - compilingOf(ours), theirs.instructions - compilingOf(theirs))}×`);
}
