import { afterAll, describe, expect, it } from 'vitest';
import type { Message } from '../../src/domain/message.ts';
import { openPostgresStore } from '../../src/infra/postgresStore.ts';
import { dropSchemas, postgresReachable, TEST_DATABASE_URL, uniqueSchema } from '../support/postgres.ts';
import { describeOwnershipContract } from './ownershipContract.ts';
import { describeStoreContract } from './storeContract.ts';

const reachable = await postgresReachable();
const schemas: string[] = [];
afterAll(() => (reachable ? dropSchemas(schemas) : undefined));

const open = async () => {
  const schema = uniqueSchema();
  schemas.push(schema);
  return openPostgresStore({ connectionString: TEST_DATABASE_URL, schema });
};

describe.skipIf(!reachable)('PostgreSQL (real local server, a schema per store)', () => {
  describeStoreContract('postgres', open, { refusesDuplicateOrder: true });

  it('refuses U+0000 (which PostgreSQL cannot keep in text) as store_rejected, for that write alone', async () => {
    const store = await open();
    try {
      const ids = ['nulsession000000000001', 'nulsession000000000002', 'nulsession000000000003'];
      for (const sessionId of ids) await store.create({ sessionId, createdAt: 1, lastActiveAt: 1, lastSeq: 0, seqReserved: 0, stopped: false, messages: [] });
      const user = (content: string): Message => ({ id: 'u1', order: 2, role: 'user', content, status: 'queued', createdAt: 1, updatedAt: 1 });
      const results = await Promise.allSettled(
        ids.map((sessionId, index) => store.save({ sessionId, lastSeq: 0, seqReserved: 0, lastActiveAt: 2, stopped: false, messages: [user(index === 1 ? 'a\0b' : 'fine')] })),
      );
      expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'store_rejected' });
      expect((await store.load(ids[0]!))?.messages.map((m) => m.content)).toEqual(['fine']);
      expect((await store.load(ids[1]!))?.messages).toEqual([]);
      expect((await store.load(ids[2]!))?.messages.map((m) => m.content)).toEqual(['fine']);
      // A title or metadata with U+0000 is refused the same way, not as an outage.
      await expect(
        store.create({ sessionId: 'nulsession000000000004', createdAt: 1, lastActiveAt: 1, lastSeq: 0, seqReserved: 0, stopped: false, messages: [], title: 'x\0' }),
      ).rejects.toMatchObject({ code: 'store_rejected' });
      await expect(
        store.create({ sessionId: 'nulsession000000000005', createdAt: 1, lastActiveAt: 1, lastSeq: 0, seqReserved: 0, stopped: false, messages: [], metadata: { k: 'x\0' } }),
      ).rejects.toMatchObject({ code: 'store_rejected' });
      await expect(store.ping()).resolves.toBeUndefined();
    } finally {
      await store.close();
    }
  });
  it('sessions created at once go in together and are all stored as given; a duplicate id is refused alone', async () => {
    const store = await open();
    try {
      const history: Message[] = [{ id: 'h1', order: 1, role: 'user', content: 'earlier', status: 'complete', createdAt: 1, updatedAt: 1 }];
      const record = (index: number, sessionId = `batchsession${String(index).padStart(10, '0')}`) => ({
        sessionId,
        createdAt: 10 + index,
        lastActiveAt: 20 + index,
        lastSeq: 0,
        seqReserved: 0,
        stopped: false,
        title: `title ${index}`,
        metadata: { index },
        owner: index % 2 === 0 ? 'key-even' : undefined,
        model: index % 3 === 0 ? 'model-three' : undefined,
        messages: index === 4 ? history : [],
      });
      const records = Array.from({ length: 40 }, (_, index) => record(index));
      // The same id twice in one batch: the second is refused, nothing else.
      const results = await Promise.allSettled([...records, record(99, records[7]!.sessionId)].map((each) => store.create(each)));
      expect(results.slice(0, 40).every((result) => result.status === 'fulfilled')).toBe(true);
      expect(results[40]).toMatchObject({ status: 'rejected', reason: { code: 'store_rejected' } });
      for (const [index, each] of records.entries()) {
        const loaded = await store.load(each.sessionId);
        expect(loaded).toMatchObject({ createdAt: 10 + index, lastActiveAt: 20 + index, title: `title ${index}`, metadata: { index } });
        expect(loaded?.owner).toBe(each.owner);
        expect(loaded?.model).toBe(each.model);
        expect(loaded?.messages.map((message) => message.content)).toEqual(index === 4 ? ['earlier'] : []);
      }
    } finally {
      await store.close();
    }
  });

  describeOwnershipContract('postgres', async () => {
    const schema = uniqueSchema();
    schemas.push(schema);
    return openPostgresStore({ connectionString: TEST_DATABASE_URL, schema });
  });
});
