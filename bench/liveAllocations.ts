/**
 * What a reply keeps alive while it streams: the objects still reachable
 * mid-reply are the ones every scavenge copies and then promotes to the old
 * generation, where only a mark-compact frees them (the burst's GC time).
 * A llm-chat server (SQLite, the burst's schedule: five chunks 400 ms apart)
 * in this process, N real `ws` clients that each send one message at once,
 * V8's sampling heap profiler from the send until `--at` ms later (objects
 * collected meanwhile left out). Prints the live bytes per reply by the
 * function that allocated them. With `--promoted`, over the whole round
 * instead: what outlived the scavenges, dead since or not (the profiler keeps
 * objects a mark-compact collected, drops those a scavenge did), after two
 * forced scavenges at the end (needs `--expose-gc`).
 *   node --expose-gc --import tsx bench/liveAllocations.ts [--sessions 5000] [--at 1000 | --promoted] [--store sqlite|memory] [--top 30]
 */
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { startInProcessBurst } from './inProcessClients.ts';

interface SampleNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SampleNode[];
}

const { values } = parseArgs({
  options: { sessions: { type: 'string', default: '5000' }, at: { type: 'string', default: '1000' }, store: { type: 'string', default: 'sqlite' }, top: { type: 'string', default: '30' }, promoted: { type: 'boolean', default: false } },
});
const sessions = Number(values.sessions);
const burst = await startInProcessBurst({ sessions, simIntervalMs: 400, storeKind: values.store === 'memory' ? 'memory' : 'sqlite' });
// A warm-up reply each: the JIT's code and the sessions' first allocations are not a reply's.
await burst.round();
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();

const inspector = new Session();
inspector.connect();
// --promoted: what survived the scavenges (and so was copied, then promoted) over the whole round, dead since or not.
await inspector.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: values.promoted });
const all = burst.round();
if (values.promoted) {
  await all;
  // Two scavenges: what is still young and alive now is a reply's only if it lives on.
  const minor = globalThis as unknown as { gc?: (options: { type: 'minor' }) => void };
  minor.gc?.({ type: 'minor' });
  minor.gc?.({ type: 'minor' });
} else {
  await new Promise((resolve) => setTimeout(resolve, Number(values.at)));
}
const { profile } = (await inspector.post('HeapProfiler.stopSampling')) as { profile: { head: SampleNode } };
await all;

const bySite = new Map<string, number>();
let total = 0;
const walk = (node: SampleNode, stack: string[]) => {
  const where = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(node_modules\/)?/, '')}:${node.callFrame.lineNumber + 1}`;
  const path = [...stack, `${node.callFrame.url}|${where}`];
  if (node.selfSize > 0 && !path.some((frame) => frame.includes('/bench/'))) {
    total += node.selfSize;
    const ours = [...path].reverse().find((frame) => frame.includes('/src/'));
    const inner = [...path].reverse().find((frame) => frame.split('|')[0]) ?? path.at(-1)!;
    const site = `${(ours ?? inner).split('|')[1]!}  <- ${inner.split('|')[1]}`;
    bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
  }
  for (const child of node.children) walk(child, path);
};
walk(profile.head, []);
const perReply = (bytes: number) => `${(bytes / sessions).toFixed(0).padStart(7)} B`;
console.log(values.promoted ? `${sessions} replies: ${perReply(total)} per reply survived the scavenges (server side)` : `${sessions} replies, ${values.at} ms after the send: ${perReply(total)} per reply still live (server side)`);
for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) console.log(`  ${perReply(bytes)}  ${site}`);
await burst.close();
