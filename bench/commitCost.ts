/**
 * What SQLite's group commits cost per reply, apart from everything else: a
 * llm-chat server in this process (the store in memory but durable, so the
 * store writer plans exactly the writes it plans for SQLite: the commit
 * before `accepted`, the reply's start, its flushes, its end), N real `ws`
 * clients that each send one message at once (five chunks 400 ms apart, as
 * the burst), and every update the writer hands the store kept, grouped by
 * the turn it came in (a group commit). Then, with no sockets and no threads:
 * the main thread's share (commit plans built and structured-cloned, as
 * posted to the writer thread) and the writer thread's (cloned back and run
 * in one transaction per group on a fresh database file, with the statements
 * and pragmas the server uses). Prints statements and µs per reply.
 * `--by-kind` adds the writer thread's cost as its statements are added kind by kind.
 *   node --import tsx bench/commitCost.ts [--sessions 5000] [--rounds 3] [--by-kind]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { deserialize, serialize } from 'node:v8';
import Database from 'better-sqlite3';
import type { SessionStore, SessionUpdate } from '../src/domain/ports.ts';
import { createMemoryStore } from '../src/infra/memoryStore.ts';
import { silentLogger } from '../src/infra/silentLogger.ts';
import { COMMIT_SQL, commitPlanOf } from '../src/infra/sqliteCommitPlan.ts';
import type { CommitPlan } from '../src/infra/sqliteCommitPlan.ts';
import { prepareCommit } from '../src/infra/sqliteCommitter.mjs';
import { CHECKPOINT_PAGES, migrateSqlite } from '../src/infra/sqliteStore.ts';
import { createChatServer } from '../src/server.ts';
import { openClients } from './inProcessClients.ts';

const { values } = parseArgs({
  options: { sessions: { type: 'string', default: '5000' }, rounds: { type: 'string', default: '3' }, 'by-kind': { type: 'boolean', default: false } },
});
const sessions = Number(values.sessions);

// Every update the writer saves, grouped by the turn it was saved in.
const groups: SessionUpdate[][] = [];
let open: SessionUpdate[] | undefined;
let capturing = true;
const memory = createMemoryStore();
const store: SessionStore = {
  ...memory,
  durable: true,
  save(update) {
    if (!capturing) return memory.save(update);
    if (!open) {
      open = [];
      groups.push(open);
      setImmediate(() => (open = undefined));
    }
    open.push(update);
    return memory.save(update);
  },
};
const server = createChatServer({ auth: { mode: 'none' }, connRatePerIp: 0, messagesPerMinute: 0, maxSessions: 0, shedLagMs: 0, simIntervalMs: 400, simChunks: 5, store, logger: silentLogger });
const { port } = await server.listen(0, '127.0.0.1');
let done = 0;
let finish = () => {};
const clients = await openClients(port, sessions, (text) => {
  if (text.startsWith('{"type":"completed"') && ++done === sessions) finish();
});
groups.length = 0; // the sessions' creation is not a reply's
const all = new Promise<void>((resolve) => (finish = resolve));
for (const socket of clients) socket.send('bench');
await all;
// The replies' last writes (their ends) come up to a flush interval later.
await new Promise((resolve) => setTimeout(resolve, 1_500));
capturing = false; // what the shutdown writes is not a reply's
for (const socket of clients) socket.terminate();
await server.close();

const updates = groups.flat();
// The sessions the replies wrote to, so that each commit finds its session's row (the sessions are
// created through `create`, which is not captured: taking their ids from the captured writes before
// the burst found none, and every touch then matched no row and skipped the rest of its plan).
const ids = [...new Set(updates.map((update) => update.sessionId))];
if (ids.length !== sessions) throw new Error(`the replies wrote to ${ids.length} sessions, not ${sessions}`);
const plans = groups.map((group) => group.map(commitPlanOf));
const count = (pick: (plan: CommitPlan) => number) => plans.flat().reduce((sum, plan) => sum + pick(plan), 0) / sessions;
const kinds = {
  'session touches': count(() => 1),
  'message upserts': count((plan) => plan.messages.length),
  'chunk-log appends': count((plan) => plan.appends.length),
  'chunk-log keep-only': count((plan) => (plan.keepLogOnly === null ? 0 : 1)),
  'chunk-log drops': count((plan) => plan.dropLogs.length),
  withdrawals: count((plan) => plan.withdrawn.length),
};
const statements = Object.values(kinds).reduce((sum, value) => sum + value, 0);
console.log(`${sessions} replies: ${(updates.length / sessions).toFixed(2)} writes each in ${groups.length} group commits, ${statements.toFixed(1)} statements per reply`);
for (const [kind, perReply] of Object.entries(kinds)) console.log(`  ${perReply.toFixed(2).padStart(6)}  ${kind}`);

const cpuMicros = (work: () => void) => {
  const before = process.cpuUsage();
  work();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / sessions;
};
/** A fresh database file with the sessions' rows, as the server's writer thread opens it. */
function freshDatabase(): { db: Database.Database; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'llm-chat-commit-'));
  const db = new Database(join(dir, 'chat.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma(`wal_autocheckpoint = ${CHECKPOINT_PAGES}`); // the writer thread's (sqliteWriterWorker.mjs)
  migrateSqlite(db);
  const insert = db.prepare('INSERT INTO sessions (id, created_at, last_active_at, last_seq, seq_reserved, stopped) VALUES (?, 0, 0, 0, 0, 0)');
  db.transaction(() => ids.forEach((id) => insert.run(id)))();
  return { db, dir };
}

/** The writer thread's µs per reply for these posted groups. */
function writerMicros(posted: readonly Buffer[]): number {
  const { db, dir } = freshDatabase();
  const commit = prepareCommit(db, COMMIT_SQL);
  let absent = 0;
  const writer = cpuMicros(() => {
    for (const message of posted) absent += commit(deserialize(message) as CommitPlan[]).absent.length;
  });
  db.close();
  rmSync(dir, { recursive: true, force: true });
  // A plan whose session is missing runs one statement, not its own: the figure would be a no-op's.
  if (absent > 0) throw new Error(`${absent} plans found no session row`);
  return writer;
}

for (let round = 1; round <= Number(values.rounds); round += 1) {
  let posted: Buffer[] = [];
  const main = cpuMicros(() => {
    posted = groups.map((group) => serialize(group.map(commitPlanOf)));
  });
  const writer = writerMicros(posted);
  console.log(`round ${round}: main thread ${main.toFixed(1)} µs per reply (plans built and cloned), writer thread ${writer.toFixed(1)} µs (cloned back and committed)`);
}

if (values['by-kind']) {
  // The writer thread's share by statement kind: the plans cut down step by step, each
  // step's median over --rounds runs (single runs here move by a quarter).
  const steps: [string, (plan: CommitPlan) => CommitPlan][] = [
    ['session touches only', (plan) => ({ ...plan, withdrawn: [], messages: [], dropLogs: [], keepLogOnly: null, appends: [] })],
    ['+ message upserts', (plan) => ({ ...plan, dropLogs: [], keepLogOnly: null, appends: [] })],
    ['+ chunk-log appends and drops', (plan) => ({ ...plan, keepLogOnly: null })],
    ['+ chunk-log keep-only (all)', (plan) => plan],
  ];
  const median = (runs: number[]) => runs.sort((a, b) => a - b)[Math.floor(runs.length / 2)]!;
  const figures = steps.map(() => [] as number[]);
  for (let round = 0; round < Number(values.rounds); round += 1) {
    steps.forEach(([, cut], index) => figures[index]!.push(writerMicros(groups.map((group) => serialize(group.map(commitPlanOf).map(cut))))));
  }
  console.log('writer thread by statement kind (cumulative, medians):');
  steps.forEach(([name], index) => console.log(`  ${median(figures[index]!).toFixed(1).padStart(7)} µs per reply  ${name}`));
}
process.exit(0);
