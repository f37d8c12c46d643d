/**
 * The longest GC pause on a large heap, for comparing V8's GC flags (README
 * Round 14): a synthetic heap of `--objects` small live objects (3,000,000
 * by default, 0.9–1.4 GB), then rounds that allocate short-lived garbage and
 * replace a share of the live objects, as a busy server does. Prints heap,
 * wall and CPU time of those rounds, their GC count and longest pause
 * (`PerformanceObserver` `gc` entries), major collections apart. Run it under each flag set:
 *   node --max-semi-space-size=32 --import tsx bench/gcPause.ts
 *   node --max-semi-space-size=32 --single-threaded-gc --import tsx bench/gcPause.ts
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';
import type { PerformanceEntry } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { objects: { type: 'string', default: '3000000' }, rounds: { type: 'string', default: '200' } } });
const objects = Number(values.objects);
const rounds = Number(values.rounds);

const pauses: { major: boolean; ms: number }[] = [];
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    pauses.push({ major: kind === constants.NODE_PERFORMANCE_GC_MAJOR, ms: entry.duration });
  }
});
interface Live {
  id: number;
  name: string;
  list: number[];
}
const live: Live[] = [];
for (let index = 0; index < objects; index += 1) live.push({ id: index, name: `session${index}`, list: [index, index + 1] });
// Only the churn's pauses: building the heap is not what a serving process does.
observer.observe({ entryTypes: ['gc'] });

const cpuBefore = process.cpuUsage();
const wallBefore = performance.now();
let young: { a: number; b: string }[] = [];
for (let round = 0; round < rounds; round += 1) {
  for (let index = 0; index < 50_000; index += 1) young.push({ a: index, b: `x${index}` });
  if (young.length > 500_000) young = young.slice(250_000);
  for (let index = 0; index < 5_000; index += 1) live[(round * 5_000 + index) % live.length] = { id: index, name: `n${index}`, list: [index] };
}
const cpu = process.cpuUsage(cpuBefore);
const wallMs = performance.now() - wallBefore;

// The observer is told after the collection: let the last entries arrive.
setTimeout(() => {
  observer.disconnect();
  const longest = (entries: { ms: number }[]) => Math.max(0, ...entries.map((entry) => entry.ms)).toFixed(1);
  const majors = pauses.filter((pause) => pause.major);
  console.log(
    `heap ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB (${live.length} live, ${young.length} young), ` +
      `wall ${wallMs.toFixed(0)} ms, CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms, ` +
      `${pauses.length} GCs, longest pause ${longest(pauses)} ms, longest major ${longest(majors)} ms (${majors.length} major)`,
  );
}, 100);
