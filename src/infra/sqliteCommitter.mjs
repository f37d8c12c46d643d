// @ts-check
/*
 * One group commit of session updates on SQLite, as plain statements over
 * plain data: the main thread turns each SessionUpdate into a CommitPlan
 * (sqliteCommitPlan.ts: rows, chunk-log steps), and this runs them in one
 * transaction. Plain JavaScript so the writer thread (sqliteWriterWorker.mjs)
 * runs it without TypeScript hooks of its own, and the main thread runs the
 * same code for a private `:memory:` database, which no thread can share.
 */

/**
 * @typedef {import('./sqliteCommitPlan.ts').CommitPlan} CommitPlan
 * @typedef {import('./sqliteCommitPlan.ts').CommitSql} CommitSql
 * @typedef {{ absent: string[]; fenced: string[] }} CommitResult
 */

/**
 * Prepares the statements on `db` and returns the commit: one transaction
 * for all the plans, resolved with the sessions not stored (deleted
 * meanwhile) and those refused for an older fencing token.
 * @param {import('better-sqlite3').Database} db
 * @param {CommitSql} sql
 * @returns {(plans: readonly CommitPlan[]) => CommitResult}
 */
export function prepareCommit(db, sql) {
  const touchSession = db.prepare(sql.touchSession);
  const fenceOf = db.prepare(sql.fenceOf);
  const deleteMessage = db.prepare(sql.deleteMessage);
  const upsertMessage = db.prepare(sql.upsertMessage);
  const dropLogOf = db.prepare(sql.dropLogOf);
  const keepLogOf = db.prepare(sql.keepLogOf);
  const appendLog = db.prepare(sql.appendLog);
  return db.transaction((/** @type {readonly CommitPlan[]} */ plans) => {
    /** @type {CommitResult} */
    const result = { absent: [], fenced: [] };
    for (const plan of plans) {
      const touched = touchSession.run(plan.touch);
      if (touched.changes === 0) {
        // Claimed by a newer owner (refused), or deleted meanwhile (nothing to keep). touch[4] is the fence.
        if (plan.touch[4] !== null && fenceOf.get(plan.sessionId)) result.fenced.push(plan.sessionId);
        else result.absent.push(plan.sessionId);
        continue;
      }
      for (const id of plan.withdrawn) deleteMessage.run(plan.sessionId, id);
      for (const row of plan.messages) upsertMessage.run(row);
      for (const id of plan.dropLogs) dropLogOf.run(plan.sessionId, id);
      if (plan.keepLogOnly !== null) keepLogOf.run(plan.sessionId, plan.keepLogOnly);
      for (const append of plan.appends) appendLog.run(append);
    }
    return result;
  });
}
