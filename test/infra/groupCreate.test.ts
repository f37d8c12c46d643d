import { describe, expect, it } from 'vitest';
import { createGroupCreate } from '../../src/infra/groupCreate.ts';
import { openSqliteStore } from '../../src/infra/sqliteStore.ts';
import { Conversation } from '../../src/domain/conversation.ts';

const constraint = () => Object.assign(new Error('UNIQUE constraint failed'), { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });

describe('group create', () => {
  it('commits what one turn queued in one transaction, and resolves only after it', async () => {
    const batches: number[][] = [];
    const group = createGroupCreate<number>((items) => batches.push([...items]));
    let resolved = 0;
    const all = [1, 2, 3].map((item) => group.create(item).then(() => (resolved += 1)));
    expect(resolved).toBe(0);
    await Promise.all(all);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('a refused item fails alone; a failing database fails the whole batch', async () => {
    const committed: number[] = [];
    const group = createGroupCreate<number>((items) => {
      if (items.includes(2)) throw constraint();
      committed.push(...items);
    });
    const results = await Promise.allSettled([1, 2, 3].map((item) => group.create(item)));
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'store_rejected' });
    expect(committed).toEqual([1, 3]);

    const down = createGroupCreate<number>(() => {
      throw new Error('disk I/O error');
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
