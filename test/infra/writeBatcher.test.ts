import { describe, expect, it } from 'vitest';
import type { SessionUpdate } from '../../src/domain/ports.ts';
import { createWriteBatcher } from '../../src/infra/writeBatcher.ts';

const update = (sessionId: string, lastSeq: number): SessionUpdate => ({ sessionId, lastSeq, seqReserved: 0, lastActiveAt: 0, stopped: false, messages: [] });
const tick = () => new Promise((resolve) => setImmediate(resolve));

/** A commit function whose calls the test answers one by one. */
function controlled() {
  const calls: { updates: readonly SessionUpdate[]; resolve: () => void; reject: (error: unknown) => void }[] = [];
  const commit = (updates: readonly SessionUpdate[]) =>
    new Promise<ReadonlySet<string>>((resolve, reject) => {
      calls.push({ updates, resolve: () => resolve(new Set()), reject });
    });
  return { calls, commit };
}

describe('write batcher (group commit)', () => {
  it('merges what arrives in one turn into one commit', async () => {
    const { calls, commit } = controlled();
    const batcher = createWriteBatcher(commit, 3);
    const saved = [batcher.save(update('A', 1)), batcher.save(update('B', 1)), batcher.save(update('A', 2))];
    await tick();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.updates.map((u) => [u.sessionId, u.lastSeq])).toEqual([
      ['A', 2],
      ['B', 1],
    ]);
    calls[0]!.resolve();
    await Promise.all(saved);
  });

  it('runs commits of other sessions side by side, but never one of a session whose earlier commit is still running', async () => {
    const { calls, commit } = controlled();
    const batcher = createWriteBatcher(commit, 3);
    const first = batcher.save(update('A', 1));
    await tick();
    const second = batcher.save(update('B', 1));
    const third = batcher.save(update('A', 2));
    await tick();
    // B does not wait behind A's commit; A's second write does.
    expect(calls.map((call) => call.updates.map((u) => `${u.sessionId}${u.lastSeq}`))).toEqual([['A1'], ['B1']]);
    calls[1]!.resolve();
    await second;
    await tick();
    expect(calls).toHaveLength(2);
    calls[0]!.resolve();
    await first;
    await tick();
    expect(calls.map((call) => call.updates.map((u) => `${u.sessionId}${u.lastSeq}`))).toEqual([['A1'], ['B1'], ['A2']]);
    calls[2]!.resolve();
    await third;
    await batcher.drain();
  });

  it('with one commit at a time (concurrency 1), commits go strictly in arrival order', async () => {
    const { calls, commit } = controlled();
    const batcher = createWriteBatcher(commit);
    const first = batcher.save(update('A', 1));
    await tick();
    const second = batcher.save(update('B', 1));
    await tick();
    expect(calls).toHaveLength(1);
    calls[0]!.resolve();
    await first;
    await tick();
    expect(calls).toHaveLength(2);
    calls[1]!.resolve();
    await second;
  });

  it('starts the next batch before the savers of the one just committed go on (their work must not hold the writer idle)', async () => {
    const { calls, commit } = controlled();
    const batcher = createWriteBatcher(commit);
    const first = batcher.save(update('A', 1));
    await tick();
    // Queued while A's commit runs: it is the next batch.
    const second = batcher.save(update('B', 1));
    await tick();
    let commitsWhenAResumed = 0;
    const resumed = first.then(() => {
      commitsWhenAResumed = calls.length;
    });
    calls[0]!.resolve();
    await resumed;
    expect(commitsWhenAResumed).toBe(2);
    calls[1]!.resolve();
    await second;
    await batcher.drain();
  });

  it('keeps the sessions of a refused batch held while it is committed again update by update: nothing of theirs overtakes', async () => {
    const { calls, commit } = controlled();
    const batcher = createWriteBatcher(commit, 2);
    const a1 = batcher.save(update('A', 1));
    const b1 = batcher.save(update('B', 1));
    await tick();
    calls[0]!.reject(Object.assign(new Error('invalid byte sequence'), { code: '22021' }));
    await tick();
    // The batch goes again one update at a time: A's first.
    expect(calls.map((call) => call.updates.map((u) => `${u.sessionId}${u.lastSeq}`))).toEqual([['A1', 'B1'], ['A1']]);
    const a2 = batcher.save(update('A', 2));
    await tick();
    // A commit is free (two may run), yet A's newer write waits for the batch it was held by.
    expect(calls).toHaveLength(2);
    calls[1]!.resolve();
    await a1;
    await tick();
    expect(calls.map((call) => call.updates.map((u) => `${u.sessionId}${u.lastSeq}`))).toEqual([['A1', 'B1'], ['A1'], ['B1']]);
    calls[2]!.resolve();
    await b1;
    await tick();
    expect(calls.at(-1)!.updates.map((u) => `${u.sessionId}${u.lastSeq}`)).toEqual(['A2']);
    calls.at(-1)!.resolve();
    await a2;
    await batcher.drain();
  });

  it('fails only the update the database refuses for its content; an outage fails the whole batch', async () => {
    const refusing = async (updates: readonly SessionUpdate[]) => {
      if (updates.some((u) => u.sessionId === 'bad')) throw Object.assign(new Error('invalid byte sequence'), { code: '22021' });
      return new Set<string>(updates.filter((u) => u.sessionId === 'gone').map((u) => u.sessionId));
    };
    const batcher = createWriteBatcher(refusing, 2);
    const results = await Promise.allSettled([batcher.save(update('ok', 1)), batcher.save(update('bad', 1)), batcher.save(update('gone', 1))]);
    expect(results.map((result) => (result.status === 'fulfilled' ? 'stored' : (result.reason as { code: string }).code))).toEqual([
      'stored',
      'store_rejected',
      'session_not_found',
    ]);
    const down = createWriteBatcher(async () => {
      throw Object.assign(new Error('connection terminated'), { code: 'ECONNRESET' });
    });
    const outage = await Promise.allSettled([down.save(update('x', 1)), down.save(update('y', 1))]);
    expect(outage.map((result) => (result as PromiseRejectedResult).reason.code)).toEqual(['store_unavailable', 'store_unavailable']);
  });
});
