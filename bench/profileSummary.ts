/**
 * Where the time went: reads a V8 `.cpuprofile` (from `npm run bench --
 * --cpu-prof DIR`) and prints the self time by area (GC, the store, XState,
 * ws, the bus, …, by the file a function lives in) and the top functions.
 *   npx tsx bench/profileSummary.ts DIR/llm-chat-….cpuprofile [--top 25]
 *     [--timeline 500]  busy ms per 500 ms of the run, to find a phase
 *     [--from S --to S]  only the samples between S and S seconds into the run
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The area a function's file belongs to; the first pattern that matches wins. */
const AREAS: [RegExp, string][] = [
  [/^\(garbage collector\)$/, 'GC'],
  [/^\(idle\)$/, 'idle'],
  [/^\((program|root)\)$/, 'V8 / native'],
  [/better-sqlite3|sqliteStore|writeBatcher|storeWriter|memoryStore|trackedStore|sessionUpdates|sql\//, 'store'],
  [/node_modules\/xstate/, 'XState'],
  [/node_modules\/ws\//, 'ws'],
  [/node_modules\/(socket\.io|engine\.io)/, 'Socket.IO'],
  [/node_modules\/(express|router|body-parser|raw-body|finalhandler|send|serve-static|on-finished|qs|iconv-lite|type-is|content-type|mime)/, 'express'],
  [/node_modules\/openai/, 'openai SDK'],
  [/node_modules\/(prom-client|rate-limiter-flexible)/, 'metrics / limits'],
  [/node_modules\/(mitt)|inProcessBus|typedMitt|chunkLog|storedReplayBus/, 'bus'],
  [/src\/actors/, 'actors (ours)'],
  [/src\/transport/, 'transport (ours)'],
  [/src\/(domain|infra)/, 'domain / infra (ours)'],
  [/node:|^node:|internal\//, 'Node core'],
  [/bench\//, 'bench peer'],
];

const areaOf = (node: ProfileNode) => {
  const key = node.callFrame.url || node.callFrame.functionName;
  for (const [pattern, area] of AREAS) if (pattern.test(key) || pattern.test(node.callFrame.functionName)) return area;
  return node.callFrame.url ? 'other JS' : 'native';
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '25' },
    inclusive: { type: 'string', default: '0' },
    timeline: { type: 'string', default: '0' },
    from: { type: 'string', default: '0' },
    to: { type: 'string', default: 'Infinity' },
  },
});

/** Time spent in each function and everything it called (each sample counted once per function on its stack). */
function inclusiveTimes(profile: Profile, selfUs: Map<number, number>): Map<string, number> {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const totals = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const node = byId.get(at)!;
      const name = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(node_modules\/)?/, '')}:${node.callFrame.lineNumber + 1}`;
      if (seen.has(name) || node.callFrame.functionName === '(root)' || node.callFrame.functionName === '(idle)') continue;
      seen.add(name);
      totals.set(name, (totals.get(name) ?? 0) + us);
    }
  }
  return totals;
}
for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  const fromUs = Number(values.from) * 1e6;
  const toUs = Number(values.to) * 1e6;
  const bucketUs = Number(values.timeline) * 1e3;
  const busyPerBucket: number[] = [];
  let elapsedUs = 0;
  profile.samples.forEach((id, index) => {
    const us = profile.timeDeltas[index] ?? 0;
    elapsedUs += us;
    if (bucketUs > 0 && byId.get(id)?.callFrame.functionName !== '(idle)') {
      const bucket = Math.floor(elapsedUs / bucketUs);
      busyPerBucket[bucket] = (busyPerBucket[bucket] ?? 0) + us;
    }
    if (elapsedUs < fromUs || elapsedUs >= toUs) return;
    selfUs.set(id, (selfUs.get(id) ?? 0) + us);
  });
  if (bucketUs > 0) {
    const rows = Array.from(busyPerBucket, (us, bucket) => `${((bucket * bucketUs) / 1e6).toFixed(1)}s ${Math.round((us ?? 0) / 1e3)}`);
    process.stdout.write(`${file}\n  busy ms per ${values.timeline} ms: ${rows.join(', ')}\n`);
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const busy = [...selfUs].filter(([id]) => byId.get(id)?.callFrame.functionName !== '(idle)').reduce((sum, [, us]) => sum + us, 0);
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const area = areaOf(node);
    if (area === 'idle') continue;
    areas.set(area, (areas.get(area) ?? 0) + us);
    const where = node.callFrame.url.replace(/^.*\/(node_modules\/)?/, '');
    const name = `${node.callFrame.functionName || '(anonymous)'} ${where}:${node.callFrame.lineNumber + 1}`;
    functions.set(name, (functions.get(name) ?? 0) + us);
  }
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
  process.stdout.write(`${file}\n  wall ${(total / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(2)} s\n  by area (share of busy time):\n`);
  for (const [area, us] of [...areas].sort((a, b) => b[1] - a[1])) process.stdout.write(`    ${pct(us)}  ${area}\n`);
  process.stdout.write('  top functions (self time):\n');
  for (const [name, us] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
    process.stdout.write(`    ${pct(us)}  ${name}\n`);
  }
  const inclusive = Number(values.inclusive);
  if (inclusive > 0) {
    process.stdout.write('  top functions (inclusive time):\n');
    for (const [name, us] of [...inclusiveTimes(profile, selfUs)].sort((a, b) => b[1] - a[1]).slice(0, inclusive)) {
      process.stdout.write(`    ${pct(us)}  ${name}\n`);
    }
  }
}
