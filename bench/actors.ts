/**
 * In-process runtime figures, no sockets: sessions activated through the
 * registry (each a supervisor root actor with its session child), memory per
 * idle session, event rate to one session at small and large counts, and a
 * churn run (create, answer, passivate) to catch leaks. Forked by
 * bench/run.ts with --expose-gc; prints one JSON line, or sends it over IPC.
 */
import { parseArgs } from 'node:util';
import { createSessionRegistry } from '../src/actors/sessionRegistry.ts';
import type { SessionRegistry } from '../src/actors/sessionRegistry.ts';
import type { ConversationRecord } from '../src/domain/conversationRecord.ts';
import type { SessionStore } from '../src/domain/ports.ts';
import { createInProcessBus } from '../src/infra/inProcessBus.ts';
import { silentLogger } from '../src/infra/silentLogger.ts';
import { createMemoryStore } from '../src/infra/memoryStore.ts';
import { randomIds } from '../src/infra/randomIds.ts';
import { createSimulatedProvider } from '../src/infra/simulatedProvider.ts';
import { systemClock } from '../src/infra/systemClock.ts';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const collect = () => {
  gc();
  gc();
};
const KB = 1024;

function makeRegistry(store: SessionStore = createMemoryStore(), ttlMs = 600_000): SessionRegistry {
  const bus = createInProcessBus();
  return createSessionRegistry({
    bus,
    store,
    provider: createSimulatedProvider({ clock: systemClock, chunks: 1, intervalMs: 0 }),
    clock: systemClock,
    logger: silentLogger,
    ids: randomIds,
    sessionTtlMs: ttlMs,
    maxSessions: Number.POSITIVE_INFINITY,
  });
}

/**
 * Events per second delivered to sessions found through the registry each
 * time: to one session (`spread` 1), or spread over `spread` sessions.
 */
async function eventRate(registry: SessionRegistry, ids: string[], events: number, spread: number): Promise<number> {
  const targets = ids.slice(0, Math.max(1, Math.min(spread, ids.length)));
  const started = performance.now();
  for (let index = 0; index < events; index += 1) {
    const session = await registry.find(targets[(index * 7919) % targets.length]!);
    session!.actor.send({ type: 'cancel' });
  }
  return events / ((performance.now() - started) / 1000);
}

/** The median of five rounds: one round can land on a major GC of the large heap. */
async function medianRate(round: () => Promise<number>): Promise<number> {
  const rates: number[] = [];
  for (let index = 0; index < 5; index += 1) rates.push(await round());
  return rates.sort((a, b) => a - b)[2]!;
}

async function activation(count: number, events: number) {
  const small = makeRegistry();
  const smallIds: string[] = [];
  for (let index = 0; index < 10; index += 1) smallIds.push((await small.create()).sessionId);
  await eventRate(small, smallIds, events, 1); // warm-up
  const oneAt10 = await medianRate(() => eventRate(small, smallIds, events, 1));
  const spreadAt10 = await medianRate(() => eventRate(small, smallIds, events, 10));
  await small.close();

  collect();
  const before = process.memoryUsage();
  const registry = makeRegistry();
  const ids: string[] = [];
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  for (let index = 0; index < count; index += 1) ids.push((await registry.create()).sessionId);
  const activationSeconds = (performance.now() - started) / 1000;
  // CPU time too: on a shared machine the wall time also counts the others' work.
  const cpu = process.cpuUsage(cpuBefore);
  const activationCpuSeconds = (cpu.user + cpu.system) / 1e6;
  collect();
  const after = process.memoryUsage();
  await eventRate(registry, ids, events, 1); // warm-up, as at 10
  const oneAtN = await medianRate(() => eventRate(registry, ids, events, 1));
  const spreadAtN = await medianRate(() => eventRate(registry, ids, events, ids.length));
  const active = registry.activeCount;
  await registry.close();
  return {
    sessions: active,
    activationSeconds,
    activationCpuSeconds,
    heapPerSessionKB: (after.heapUsed - before.heapUsed) / count / KB,
    rssPerSessionKB: (after.rss - before.rss) / count / KB,
    oneSessionEventsPerSecondAt10: oneAt10,
    oneSessionEventsPerSecondAtN: oneAtN,
    spreadEventsPerSecondAt10: spreadAt10,
    spreadEventsPerSecondAtN: spreadAtN,
  };
}

/** A store that keeps nothing in this process, as a database would not: the churn measures the runtime alone. */
function externalStore(): SessionStore {
  let writes = 0;
  return {
    async create() {
      writes += 1;
    },
    async load(): Promise<ConversationRecord | undefined> {
      return undefined;
    },
    async save() {
      writes += 1;
    },
    async delete() {
      return true;
    },
    async ping() {},
    async close() {},
    async listSessions() {
      return { sessions: [], nextCursor: null };
    },
    async listMessages() {
      return undefined;
    },
    async idleSessions() {
      return [];
    },
    async chunksAfter() {
      return [];
    },
  };
}

async function churn(total: number, batch: number) {
  const registry = makeRegistry(externalStore(), 1);
  const round = async () => {
    const sessions = await Promise.all(Array.from({ length: batch }, () => registry.create()));
    await Promise.all(
      sessions.map(
        (session) =>
          new Promise<void>((resolve) => {
            session.send('churn').catch((error: unknown) => process.stderr.write(`churn: ${String(error)}\n`));
            const poll = () => (session.busy ? setImmediate(poll) : resolve());
            poll();
          }),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 2));
    registry.passivateIdle();
  };
  // Warm up to a steady state before the baseline reading.
  for (let done = 0; done < Math.min(total, 20_000); done += batch) await round();
  collect();
  const before = process.memoryUsage();
  const started = performance.now();
  let created = 0;
  let lastReport = started;
  while (created < total) {
    await round();
    created += batch;
    if (process.send && performance.now() - lastReport > 2000) {
      lastReport = performance.now();
      process.send({ type: 'progress', created, total, rssMB: process.memoryUsage().rss / KB / KB });
    }
  }
  const seconds = (performance.now() - started) / 1000;
  collect();
  await new Promise((resolve) => setTimeout(resolve, 100));
  collect();
  const after = process.memoryUsage();
  await registry.close();
  return {
    sessions: created,
    seconds,
    sessionsPerSecond: created / seconds,
    activeAfter: registry.activeCount,
    rssBeforeMB: before.rss / KB / KB,
    rssAfterMB: after.rss / KB / KB,
    rssGrowthPercent: ((after.rss - before.rss) / before.rss) * 100,
    heapBeforeMB: before.heapUsed / KB / KB,
    heapAfterMB: after.heapUsed / KB / KB,
  };
}

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'activation' },
    sessions: { type: 'string', default: '100000' },
    events: { type: 'string', default: '50000' },
    batch: { type: 'string', default: '1000' },
  },
});
const count = Number(values.sessions);
const result =
  values.mode === 'churn' ? await churn(count, Number(values.batch)) : await activation(count, Number(values.events));
if (process.send) process.send({ type: 'result', result });
else console.log(JSON.stringify(result));
process.exit(0);
