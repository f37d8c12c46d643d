/**
 * Where a reply's garbage comes from: a llm-chat server (SQLite, the bench's
 * options) in this process, N real `ws` clients that each send one message at
 * once (five chunks 40 ms apart), and V8's sampling heap profiler running only
 * while the replies stream, keeping the objects that GC already collected (the
 * garbage is what costs). Prints bytes allocated per reply by the function
 * that allocated them (our code and the libraries, the clients' own excluded
 * where the stack shows them), and writes the profile for DevTools.
 *   node --import tsx bench/allocations.ts [sessions=2000] [out.heapprofile]
 * With `cpu` in place of the file it samples nothing and prints this
 * process's CPU time per reply (server and clients together) over five rounds.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { startInProcessBurst } from './inProcessClients.ts';

interface SampleNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SampleNode[];
}

const sessions = Number(process.argv[2] ?? 2000);
const out = process.argv[3];
const burst = await startInProcessBurst({ sessions, simIntervalMs: 40, storeKind: 'sqlite' });

if (out === 'cpu') {
  for (let round = 0; round < 5; round += 1) {
    const before = process.cpuUsage();
    await burst.round();
    const used = process.cpuUsage(before);
    console.log(`round ${round + 1}: ${((used.user + used.system) / 1000 / sessions).toFixed(3)} ms CPU per reply (server and clients)`);
  }
  await burst.close();
  process.exit(0);
}

const inspector = new Session();
inspector.connect();
await inspector.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
await burst.round();
const { profile } = (await inspector.post('HeapProfiler.stopSampling')) as { profile: { head: SampleNode } };
if (out) writeFileSync(out, JSON.stringify(profile));

const bySite = new Map<string, number>();
const byArea = new Map<string, number>();
let total = 0;
const walk = (node: SampleNode, stack: string[]) => {
  const where = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(node_modules\/)?/, '')}:${node.callFrame.lineNumber + 1}`;
  const path = [...stack, `${node.callFrame.url}|${where}`];
  if (node.selfSize > 0) {
    total += node.selfSize;
    // Blame the innermost frame of our own code (src/), else the innermost frame with a file.
    const ours = [...path].reverse().find((frame) => frame.includes('/src/'));
    const site = (ours ?? [...path].reverse().find((frame) => frame.split('|')[0]) ?? path.at(-1)!).split('|')[1]!;
    bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
    const area = path.some((frame) => frame.includes('/bench/')) ? 'bench clients' : ours ? 'ours (src/)' : 'libraries / node';
    byArea.set(area, (byArea.get(area) ?? 0) + node.selfSize);
  }
  for (const child of node.children) walk(child, path);
};
walk(profile.head, []);
const perReply = (bytes: number) => `${(bytes / sessions).toFixed(0).padStart(7)} B`;
console.log(`${sessions} replies, ${(total / 1e6).toFixed(1)} MB sampled, ${perReply(total)} per reply`);
for (const [area, bytes] of [...byArea].sort((a, b) => b[1] - a[1])) console.log(`  ${perReply(bytes)}  ${area}`);
console.log('top allocation sites (innermost frame of ours, else the allocating function), per reply:');
for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`  ${perReply(bytes)}  ${site}`);

await burst.close();
