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
 * (its compiler and GC work on the main thread): with its concurrent threads
 * two runs of the same code differed by 4–10%. Single-threaded, after 5
 * warm-up rounds they still differed by up to 10%, V8's optimizing compiler
 * still at work; after 60 (the default) two pairs of runs differed by 0.1%
 * and 3.7% (200 sessions, 8 measured rounds). The count without V8's
 * compiling is printed too: it is the steadier figure.
 *   node --import tsx bench/instructionCount.ts [--sessions 200] [--warm-up 60] [--rounds 8] [--store sqlite|memory] [--interval-ms 40] [--keep DIR]
 * Needs valgrind (Debian's package: callgrind, callgrind_control). About
 * 100× slower than native: 200 sessions take a few minutes. Timers run late
 * under valgrind (a reply takes ~30 ms of CPU there), so group commits hold
 * more than at full speed; compare two versions with the same options.
 * `--keep DIR` leaves callgrind's output there (`callgrind_annotate` reads
 * it: native code by function, V8's generated code as `???`).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '200' },
    'warm-up': { type: 'string', default: '60' },
    rounds: { type: 'string', default: '8' },
    store: { type: 'string', default: 'sqlite' },
    'interval-ms': { type: 'string', default: '40' },
    keep: { type: 'string' },
  },
});
const sessions = Number(values.sessions);
const rounds = Number(values.rounds);

if (process.env['BENCH_UNDER_CALLGRIND'] === '1') {
  // Inside valgrind: the burst, with counting switched on around the measured rounds only.
  const { startInProcessBurst } = await import('./inProcessClients.ts');
  const burst = await startInProcessBurst({ sessions, simIntervalMs: Number(values['interval-ms']), storeKind: values.store === 'memory' ? 'memory' : 'sqlite' });
  for (let round = 0; round < Number(values['warm-up']); round += 1) await burst.round();
  const count = (on: boolean) => execFileSync('callgrind_control', ['--instr=' + (on ? 'on' : 'off'), String(process.pid)], { stdio: 'ignore' });
  count(true);
  for (let round = 0; round < rounds; round += 1) await burst.round();
  count(false);
  await burst.close();
  process.exit(0);
}

const out = values.keep ?? mkdtempSync(join(tmpdir(), 'llm-chat-callgrind-'));
const script = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const started = Date.now();
const code = await new Promise<number | null>((resolve, reject) => {
  const child = spawn(
    'valgrind',
    ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${join(out, 'callgrind.out.%p')}`, process.execPath, ...SERVER_NODE_FLAGS, '--single-threaded', '--import', 'tsx', script, ...args],
    { env: { ...process.env, BENCH_UNDER_CALLGRIND: '1' }, stdio: ['ignore', 'inherit', 'pipe'] },
  );
  let errors = '';
  child.stderr.on('data', (data: Buffer) => (errors += data.toString()));
  child.on('error', (error) => reject(new Error(`valgrind could not start (apt-get install valgrind): ${error.message}`)));
  child.on('exit', (exitCode) => {
    if (exitCode !== 0) process.stderr.write(errors);
    resolve(exitCode);
  });
});
if (code !== 0) process.exit(1);

// callgrind writes one file per process (node's own, here); its `totals:` line, at the end, counts the measured rounds.
const totals = readdirSync(out)
  .filter((file) => file.startsWith('callgrind.out.'))
  .map((file) => Number(/^totals: (\d+)/m.exec(readFileSync(join(out, file), 'utf8'))?.[1] ?? 0));
const instructions = totals.reduce((sum, total) => sum + total, 0);
if (instructions === 0) throw new Error(`callgrind counted nothing in ${out}: callgrind_control could not switch counting on`);
const replies = sessions * rounds;
const perReply = (count: number) => `${(count / replies / 1e6).toFixed(3)} M`;
console.log(
  `${values.store} store, ${sessions} sessions × ${rounds} rounds (${values['interval-ms']} ms between chunks): ${perReply(instructions)} instructions per reply (server and clients, every thread; ${Math.round((Date.now() - started) / 1000)} s)`,
);
const areas = areasOf(out);
const compiling = [...areas].find(([area]) => area.startsWith('V8 compiling'))?.[1] ?? 0;
console.log(`  ${perReply(instructions - compiling)} without V8's compiling (the JIT's own work, which moves between identical runs)`);
for (const [area, count] of [...areas].sort((a, b) => b[1] - a[1])) console.log(`  ${((count / instructions) * 100).toFixed(1).padStart(5)}%  ${perReply(count).padStart(8)}  ${area}`);
if (values.keep === undefined) rmSync(out, { recursive: true, force: true });
