import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoredKey } from '../../src/domain/apiKeys.ts';
import type { ConversationRecord } from '../../src/domain/conversationRecord.ts';
import type { SessionStore } from '../../src/domain/ports.ts';

const T0 = 1_700_000_000_000;
const sid = (n: number) => `owned${String(n).padStart(17, '0')}`;

function record(n: number, overrides: Partial<ConversationRecord> = {}): ConversationRecord {
  return { sessionId: sid(n), createdAt: T0 + n, lastActiveAt: T0 + n, lastSeq: 0, seqReserved: 0, stopped: false, messages: [], ...overrides };
}

function key(n: number, overrides: Partial<StoredKey> = {}): StoredKey {
  return {
    id: `key_${String(n).padStart(12, '0')}`,
    name: `key ${n}`,
    hash: String(n).padStart(64, 'a'),
    limits: {},
    createdAt: T0 + n,
    lastUsedAt: null,
    revokedAt: null,
    ...overrides,
  };
}

/**
 * What identity and access need of every store: sessions carry their owner
 * key id, list by owner, and are found by age for retention; API keys are
 * kept (hashed) with their limits and revocation. Run against memory, SQLite
 * and PostgreSQL; `open` gives a fresh, empty store.
 */
export function describeOwnershipContract(name: string, open: () => Promise<SessionStore>): void {
  describe(`owners, retention and keys: ${name}`, () => {
    let store: SessionStore;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    it('keeps the owner with the session and lists one owner’s sessions newest first, page by page', async () => {
      for (let n = 1; n <= 7; n += 1) await store.create(record(n, n % 2 === 0 ? { owner: 'key_even' } : { owner: 'key_odd' }));
      await store.create(record(8)); // made without a key (--auth none)
      expect((await store.load(sid(2)))?.owner).toBe('key_even');
      expect((await store.load(sid(8)))?.owner).toBeUndefined();
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listSessions({ limit: 2, owner: 'key_odd', ...(cursor ? { cursor } : {}) });
        seen.push(...page.sessions.map((session) => session.sessionId));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      expect(seen).toEqual([sid(7), sid(5), sid(3), sid(1)]);
      expect((await store.listSessions({ limit: 10, owner: 'key_none' })).sessions).toEqual([]);
      // The list shape itself does not carry the owner.
      expect(Object.keys((await store.listSessions({ limit: 1, owner: 'key_even' })).sessions[0]!)).not.toContain('owner');
      expect((await store.listSessions({ limit: 10 })).sessions).toHaveLength(8);
    });

    it('lists each session with the first words of its first user message', async () => {
      const long = `${'word '.repeat(30)}✓ end`;
      await store.create(record(1, { messages: [{ id: 'a1', order: 0, role: 'assistant', content: 'greeting', status: 'complete', createdAt: T0, updatedAt: T0 }] }));
      await store.create(record(2));
      await store.save({
        sessionId: sid(2),
        lastSeq: 0,
        seqReserved: 0,
        lastActiveAt: T0 + 5,
        stopped: false,
        messages: [
          { id: 'u1', order: 0, role: 'user', content: long, status: 'complete', createdAt: T0, updatedAt: T0 },
          { id: 'u2', order: 2, role: 'user', content: 'second', status: 'complete', createdAt: T0, updatedAt: T0 },
        ],
      });
      const { sessions } = await store.listSessions({ limit: 10 });
      expect(sessions.find((session) => session.sessionId === sid(2))?.preview).toBe(long.slice(0, 80));
      expect(sessions.find((session) => session.sessionId === sid(1))).not.toHaveProperty('preview');
    });

    it('finds sessions idle since a time, oldest activity first, a bounded batch at a time', async () => {
      for (let n = 1; n <= 5; n += 1) await store.create(record(n, { lastActiveAt: T0 + 100 * n }));
      expect(await store.idleSessions(T0 + 350, 10)).toEqual([sid(1), sid(2), sid(3)]);
      expect(await store.idleSessions(T0 + 350, 2)).toEqual([sid(1), sid(2)]);
      await store.save({ sessionId: sid(1), lastSeq: 0, seqReserved: 0, lastActiveAt: T0 + 1000, stopped: false, messages: [] });
      expect(await store.idleSessions(T0 + 350, 10)).toEqual([sid(2), sid(3)]);
      expect(await store.idleSessions(T0, 10)).toEqual([]);
    });

    it('keeps API keys by hash with their limits, renames, revokes (kept, not listed) and records use', async () => {
      const keys = store.keys!;
      expect(keys).toBeDefined();
      expect(await keys.hasActive()).toBe(false);
      await keys.create(key(1, { limits: { messagesPerMinute: 5, connections: 0 } }));
      await keys.create(key(2));
      expect(await keys.hasActive()).toBe(true);
      await expect(keys.create(key(3, { hash: key(1).hash }))).rejects.toThrow();
      expect(await keys.findByHash(key(1).hash)).toEqual(key(1, { limits: { messagesPerMinute: 5, connections: 0 } }));
      expect(await keys.findByHash('f'.repeat(64))).toBeUndefined();
      expect((await keys.listActive()).map((stored) => stored.id)).toEqual([key(1).id, key(2).id]);

      const renamed = await keys.update(key(1).id, { name: 'renamed', limits: { liveSessions: 3 } });
      expect(renamed).toMatchObject({ name: 'renamed', limits: { liveSessions: 3 } });
      expect((await keys.update(key(2).id, { name: 'only the name' }))?.limits).toEqual({});
      expect(await keys.update('key_missing00000', { name: 'x' })).toBeUndefined();

      await keys.touch(key(1).id, T0 + 50);
      await keys.touch(key(1).id, T0 + 40); // never back in time
      expect((await keys.findByHash(key(1).hash))?.lastUsedAt).toBe(T0 + 50);

      expect(await keys.revoke(key(1).id, T0 + 60)).toBe(true);
      expect(await keys.revoke(key(1).id, T0 + 70)).toBe(false);
      expect(await keys.update(key(1).id, { name: 'too late' })).toBeUndefined();
      expect((await keys.findByHash(key(1).hash))?.revokedAt).toBe(T0 + 60);
      expect((await keys.listActive()).map((stored) => stored.id)).toEqual([key(2).id]);
      expect((await keys.findByIds([key(1).id, 'key_missing00000', key(2).id])).map((stored) => [stored.id, stored.revokedAt]).sort()).toEqual([
        [key(1).id, T0 + 60],
        [key(2).id, null],
      ]);
      expect(await keys.revoke(key(2).id, T0 + 80)).toBe(true);
      expect(await keys.hasActive()).toBe(false);
    });
  });
}
