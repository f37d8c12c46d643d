import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Message } from '../../src/domain/message.ts';
import { isFencedWrite } from '../../src/domain/ownership.ts';
import type { SessionStore, SessionUpdate } from '../../src/domain/ports.ts';
import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import { openPostgresStore } from '../../src/infra/postgresStore.ts';
import { openSqliteStore } from '../../src/infra/sqliteStore.ts';
import { dropSchemas, postgresReachable, TEST_DATABASE_URL, uniqueSchema } from '../support/postgres.ts';

const reachable = await postgresReachable();
const directory = mkdtempSync(join(tmpdir(), 'llm-chat-fencing-'));
const schemas: string[] = [];
afterAll(async () => {
  rmSync(directory, { recursive: true, force: true });
  if (reachable) await dropSchemas(schemas);
});

const stores: [string, () => Promise<SessionStore>, boolean][] = [
  ['memory', async () => createMemoryStore(), true],
  ['sqlite', async () => openSqliteStore({ path: join(directory, `${Math.random()}.sqlite`) }), true],
  [
    'postgres',
    async () => {
      const schema = uniqueSchema('llm_chat_fence');
      schemas.push(schema);
      return openPostgresStore({ connectionString: TEST_DATABASE_URL, schema });
    },
    reachable,
  ],
];

let order = 0;
const reply = (id: string, content: string): Message => ({ id, order: (order += 2), role: 'assistant', content, status: 'streaming', createdAt: 1, updatedAt: 2 });
const update = (sessionId: string, fence: number | undefined, message: Message, lastSeq = 1): SessionUpdate => ({
  sessionId,
  lastSeq,
  seqReserved: lastSeq,
  lastActiveAt: 2,
  stopped: false,
  messages: [message],
  ...(fence !== undefined ? { fence } : {}),
});
const record = (sessionId: string) => ({ sessionId, createdAt: 1, lastActiveAt: 1, lastSeq: 0, seqReserved: 0, stopped: false, messages: [] });

for (const [name, open, available] of stores) {
  describe.skipIf(!available)(`fencing tokens (${name})`, () => {
    it('a claim raises the token once; writes with an older token are refused and change nothing', async () => {
      const store = await open();
      await store.create(record('fenced000000000000001'));
      expect(await store.claim!('missing000000000000001', 1)).toBeUndefined();
      expect(await store.claim!('fenced000000000000001', 1)).toEqual({ claimed: true, fence: 1 });
      await store.save(update('fenced000000000000001', 1, reply('r1', 'by the first owner')));
      // A second owner claims with a newer token: the first one's late write is refused.
      expect(await store.claim!('fenced000000000000001', 2)).toEqual({ claimed: true, fence: 2 });
      expect(await store.claim!('fenced000000000000001', 2)).toEqual({ claimed: false, fence: 2 });
      const late = store.save(update('fenced000000000000001', 1, reply('r1', 'late write of the paused owner'), 9));
      await expect(late).rejects.toSatisfy(isFencedWrite);
      await store.save(update('fenced000000000000001', 2, reply('r2', 'by the new owner'), 3));
      const loaded = await store.load('fenced000000000000001');
      expect(loaded?.messages.map((m) => m.content)).toEqual(['by the first owner', 'by the new owner']);
      expect(loaded?.lastSeq).toBe(3);
      // A write with a newer token than claimed raises the fence too.
      await store.save(update('fenced000000000000001', 5, reply('r2', 'newer'), 4));
      expect(await store.claim!('fenced000000000000001', 4)).toEqual({ claimed: false, fence: 5 });
      // Unfenced writes (one node) are not checked.
      await store.save(update('fenced000000000000001', undefined, reply('r2', 'one node'), 4));
      expect((await store.load('fenced000000000000001'))?.messages[1]?.content).toBe('one node');
      await store.close();
    });

    it('in one batch, a refused write fails only its own session', async () => {
      const store = await open();
      await store.create(record('batchA00000000000000001'.slice(0, 22)));
      await store.create(record('batchB00000000000000001'.slice(0, 22)));
      const [a, b] = ['batchA00000000000000001'.slice(0, 22), 'batchB00000000000000001'.slice(0, 22)];
      await store.claim!(a, 3);
      await store.claim!(b, 3);
      // Issued in the same tick: the SQL stores commit them in one transaction.
      const results = await Promise.allSettled([store.save(update(a, 2, reply('ra', 'stale'))), store.save(update(b, 3, reply('rb', 'current')))]);
      expect(results[0]!.status).toBe('rejected');
      expect(isFencedWrite((results[0] as PromiseRejectedResult).reason)).toBe(true);
      expect(results[1]!.status).toBe('fulfilled');
      expect((await store.load(a))?.messages).toEqual([]);
      expect((await store.load(b))?.messages.map((m) => m.content)).toEqual(['current']);
      await store.close();
    });
  });
}
