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

/**
 * Medians of rounds taken in turn, at 10 sessions and at N: both registries
 * alive and measured alternately, so each side meets the same heap, the same
 * JIT and the same machine. Measured one after the other (10 first, on a small
 * heap and a JIT still compiling), the ratio swung 0.61–1.72× between runs.
 */
async function pairedRates(atTen: () => Promise<number>, atN: () => Promise<number>, rounds = 7): Promise<[number, number]> {
  const ten: number[] = [];
  const many: number[] = [];
  for (let index = 0; index < rounds; index += 1) {
    // The order flips every round: neither side always runs just after the other's garbage.
    if (index % 2 === 0) {
      ten.push(await atTen());
      many.push(await atN());
    } else {
      many.push(await atN());
      ten.push(await atTen());
    }
  }
  const median = (rates: number[]) => rates.sort((a, b) => a - b)[Math.floor(rates.length / 2)]!;
  return [median(ten), median(many)];
}

async function activation(count: number, events: number) {
  const small = makeRegistry();
  const smallIds: string[] = [];
  for (let index = 0; index < 10; index += 1) smallIds.push((await small.create()).sessionId);

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
  // Warm-ups, one each: the JIT's first compiles are not either side's.
  await eventRate(small, smallIds, events, 1);
  await eventRate(registry, ids, events, 1);
  const [oneAt10, oneAtN] = await pairedRates(
    () => eventRate(small, smallIds, events, 1),
    () => eventRate(registry, ids, events, 1),
  );
  const [spreadAt10, spreadAtN] = await pairedRates(
    () => eventRate(small, smallIds, events, 10),
    () => eventRate(registry, ids, events, ids.length),
  );
  await small.close();
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
