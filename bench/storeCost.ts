/**
 * The throughput cost of persistence: chunks/s streamed through the session
 * actors with the store in memory vs SQLite (and PostgreSQL when reachable),
 * in one process, no sockets (so the store's share is not hidden behind
 * WebSocket framing). Every session queues its messages at once and the
 * simulated model streams them back to back.
 *
 *   node --expose-gc --import tsx bench/storeCost.ts [--sessions 200] [--messages 5] [--chunks 100]
 *     [--interval-ms 0] [--flush-interval-ms 500] [--rounds 3]
 *     [--stores memory,sqlite,postgres] [--database-url postgres://…]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { SessionStore } from '../src/domain/ports.ts';
import { silentLogger } from '../src/infra/silentLogger.ts';
import { createMemoryStore } from '../src/infra/memoryStore.ts';
import { openPostgresStore } from '../src/infra/postgresStore.ts';
import { openSqliteStore } from '../src/infra/sqliteStore.ts';
import { createChatServer } from '../src/server.ts';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '200' },
    messages: { type: 'string', default: '5' },
    chunks: { type: 'string', default: '100' },
    'interval-ms': { type: 'string', default: '0' },
    'flush-interval-ms': { type: 'string', default: '500' },
    rounds: { type: 'string', default: '3' },
    stores: { type: 'string', default: 'memory,sqlite,postgres' },
    'database-url': { type: 'string', default: process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const sessions = Number(values.sessions);
const messages = Number(values.messages);
const chunks = Number(values.chunks);
const intervalMs = Number(values['interval-ms']);
const flushIntervalMs = Number(values['flush-interval-ms']);
const rounds = Number(values.rounds);
const kinds = values.stores.split(',');
const directory = mkdtempSync(join(tmpdir(), 'llm-chat-bench-'));
const schemas: string[] = [];

async function open(kind: string, round: number): Promise<SessionStore | undefined> {
  if (kind === 'memory') return createMemoryStore();
  if (kind === 'sqlite') return openSqliteStore({ path: join(directory, `bench-${round + 1}.sqlite`) });
  const schema = `llm_chat_bench_${process.pid}_${round + 1}`;
  try {
    const store = await openPostgresStore({ connectionString: values['database-url'], schema, timeoutMs: 3000 });
    schemas.push(schema);
    return store;
  } catch (error) {
    console.error(`postgres skipped: ${String(error)}`);
    return undefined;
  }
}

async function cleanUp(): Promise<void> {
  rmSync(directory, { recursive: true, force: true });
  if (schemas.length === 0) return;
  const client = new pg.Client({ connectionString: values['database-url'] });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
}

interface Result {
  chunksPerSecond: number;
  seconds: number;
  drainMs: number;
}

async function run(kind: string, round: number): Promise<Result | undefined> {
  // Start every run from a clean heap, so one store's garbage is not billed to the next.
  (globalThis as { gc?: () => void }).gc?.();
  const store = await open(kind, round);
  if (!store) return undefined;
  const server = createChatServer({
    auth: { mode: 'none' },
    store,
    simChunks: chunks,
    simIntervalMs: intervalMs,
    flushIntervalMs,
    queueLimit: messages,
    logger: silentLogger,
    sessionTtlMs: 3_600_000,
  });
  const live = await Promise.all(Array.from({ length: sessions }, () => server.registry.create()));
  let streamed = 0;
  let completed = 0;
  const expected = sessions * messages;
  const done = new Promise<void>((resolve) => {
    server.bus.subscribeAll((event) => {
      if (event.type === 'chunk') streamed += 1;
      else if (event.type === 'message.completed' && ++completed === expected) resolve();
    });
  });
  const started = performance.now();
  const sends: Promise<unknown>[] = [];
  for (const session of live) for (let m = 0; m < messages; m += 1) sends.push(session.send(`message ${m}`));
  await Promise.all(sends);
  await done;
  const seconds = (performance.now() - started) / 1000;
  const closing = performance.now();
  const sample = live[0]!.sessionId;
  await server.registry.close(); // writes what is pending
  const drainMs = performance.now() - closing;
  if (kind !== 'memory') {
    const stored = await store.load(sample);
    const complete = stored?.messages.filter((message) => message.role === 'assistant' && message.status === 'complete').length;
    if (complete !== messages) throw new Error(`${kind}: expected ${messages} complete replies stored, found ${complete}`);
  }
  await server.close();
  return { chunksPerSecond: streamed / seconds, seconds, drainMs };
}

// One unmeasured run first, so JIT warm-up does not count against whichever store runs first.
const results = new Map<string, Result[]>();
try {
  await run('memory', -1);
  for (let round = 0; round < rounds; round += 1) {
    for (const kind of kinds) {
      const result = await run(kind, round);
      if (!result) continue;
      results.set(kind, [...(results.get(kind) ?? []), result]);
      process.stderr.write(`round ${round + 1} ${kind}: ${Math.round(result.chunksPerSecond)} chunks/s\n`);
    }
  }
} finally {
  await cleanUp();
}

const median = (numbers: number[]) => [...numbers].sort((a, b) => a - b)[Math.floor(numbers.length / 2)]!;
const baseline = median((results.get('memory') ?? []).map((r) => r.chunksPerSecond));
console.log(
  `\n${sessions} sessions × ${messages} messages × ${chunks} chunks, interval ${intervalMs} ms, flush every ${flushIntervalMs} ms, median of ${rounds} rounds`,
);
console.log('store     chunks/s   vs memory   run s   final-write drain ms');
for (const [kind, list] of results) {
  const cps = median(list.map((r) => r.chunksPerSecond));
  console.log(
    `${kind.padEnd(9)} ${String(Math.round(cps)).padStart(8)}   ${baseline ? (cps / baseline).toFixed(2).padStart(9) : '        -'}   ${median(list.map((r) => r.seconds)).toFixed(2).padStart(5)}   ${Math.round(median(list.map((r) => r.drainMs)))}`,
  );
}

