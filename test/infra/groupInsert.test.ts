import { describe, expect, it } from 'vitest';
import { Conversation } from '../../src/domain/conversation.ts';
import { createGroupInsert } from '../../src/infra/groupInsert.ts';
import { openSqliteStore } from '../../src/infra/sqliteStore.ts';

const constraint = () => Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' });

/** A commit the test ends when it chooses. */
function gatedCommits() {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const commitAll = (items: readonly number[]) =>
    new Promise<void>((resolve) => {
      batches.push([...items]);
      gates.push(resolve);
    });
  return { batches, gates, commitAll };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('group insert', () => {
  it('commits what one turn queued together; what arrives while the commits run goes into the next one, each resolving only after its own commit', async () => {
    const { batches, gates, commitAll } = gatedCommits();
    const group = createGroupInsert<number>(commitAll, 1);
    const resolved: number[] = [];
    const first = [1, 2, 3].map((item) => group.create(item).then(() => resolved.push(item)));
    await turn();
    expect(batches).toEqual([[1, 2, 3]]);
    const second = [4, 5].map((item) => group.create(item).then(() => resolved.push(item)));
    await turn();
    // One commit at most: 4 and 5 wait for it, together.
    expect(batches).toEqual([[1, 2, 3]]);
    expect(resolved).toEqual([]);
    gates[0]!();
    await Promise.all(first);
    await turn();
    expect(batches).toEqual([[1, 2, 3], [4, 5]]);
    expect(resolved).toEqual([1, 2, 3]);
    gates[1]!();
    await Promise.all(second);
    expect(resolved).toEqual([1, 2, 3, 4, 5]);
    await group.drain();
  });

  it('runs up to `concurrency` commits side by side', async () => {
    const { batches, gates, commitAll } = gatedCommits();
    const group = createGroupInsert<number>(commitAll, 2);
    const first = group.create(1);
    await turn();
    const second = group.create(2);
    await turn();
    expect(batches).toEqual([[1], [2]]);
    for (const open of gates) open();
    await Promise.all([first, second]);
  });

  it('a refused item fails alone (store_rejected); a failing database fails the whole batch (store_unavailable)', async () => {
    const committed: number[] = [];
    const group = createGroupInsert<number>(async (items) => {
      if (items.includes(2)) throw constraint();
      committed.push(...items);
    });
    const results = await Promise.allSettled([1, 2, 3].map((item) => group.create(item)));
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'store_rejected' });
    expect(committed).toEqual([1, 3]);

    const down = createGroupInsert<number>(async () => {
      throw Object.assign(new Error('connection terminated'), { code: '57P01' });
    });
    const failed = await Promise.allSettled([1, 2].map((item) => down.create(item)));
    expect(failed.map((result) => (result as PromiseRejectedResult).reason?.code)).toEqual(['store_unavailable', 'store_unavailable']);
  });

  it('SQLite: sessions created at once are all stored; a duplicate id is refused alone', async () => {
    const store = openSqliteStore({ path: ':memory:' });
    const records = ['a', 'b', 'a'].map((id) => Conversation.start(id, 1, { queueLimit: 8 }).toRecord());
    const results = await Promise.allSettled(records.map((record) => store.create(record)));
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(await store.load('a')).toBeDefined();
    expect(await store.load('b')).toBeDefined();
    await store.close();
  });
});
