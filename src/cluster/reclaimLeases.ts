import type { Redis } from 'ioredis';
import type { SessionId } from '../domain/ids.ts';
import { redisKeys } from '../infra/redisKeys.ts';
import type { ScriptCommands } from '../infra/redisScripts.ts';

export interface HeldLease {
  holder: string;
  token: number;
}

const RECLAIM_BATCH = 500;

/**
 * After this node's heartbeat was found expired (a pause, Redis restarted
 * empty): keeps in Redis each lease still ours and returns the sessions whose
 * lease another node took meanwhile (only those still held as they were when
 * asked: one let go or retaken since is not reported). Batches of 500 per script call.
 */
export async function reclaimLeases(redis: Redis & ScriptCommands, heldKey: string, held: ReadonlyMap<SessionId, HeldLease>, onCommand: (count: number) => void): Promise<SessionId[]> {
  const batch = [...held.entries()];
  const lost: SessionId[] = [];
  for (let index = 0; index < batch.length; index += RECLAIM_BATCH) {
    const slice = batch.slice(index, index + RECLAIM_BATCH);
    const keys = slice.flatMap(([sessionId]) => [redisKeys.lease(sessionId), redisKeys.fence(sessionId)]);
    const args = slice.flatMap(([, lease]) => [lease.holder, lease.token]);
    onCommand(1);
    const indexes = await redis.reclaimLeases(keys.length, ...keys, heldKey, ...args);
    for (const position of indexes) {
      const [sessionId, lease] = slice[position - 1]!;
      if (held.get(sessionId) === lease) lost.push(sessionId);
    }
  }
  return lost;
}
