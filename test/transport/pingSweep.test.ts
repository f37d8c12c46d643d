import { describe, expect, it } from 'vitest';
import { startPingSweep } from '../../src/transport/pingSweep.ts';
import type { Pingable } from '../../src/transport/pingSweep.ts';
import { ManualClock } from '../support/manualClock.ts';

/** Connections that record when the sweep visits them. */
function recorders(count: number): { connections: Set<Pingable>; visits: Map<Pingable, number[]> } {
  const visits = new Map<Pingable, number[]>();
  const connections = new Set<Pingable>();
  for (let index = 0; index < count; index += 1) {
    const times: number[] = [];
    const connection: Pingable = { heartbeat: (now) => void times.push(now) };
    visits.set(connection, times);
    connections.add(connection);
  }
  return { connections, visits };
}

describe('the ping sweep', () => {
  it('visits every connection once per interval, in slices of at most a tenth of them 100 ms apart (not all in one tick)', async () => {
    const clock = new ManualClock();
    const start = clock.now();
    const { connections, visits } = recorders(1000);
    const sweep = startPingSweep(connections, 1000, clock);
    await clock.advance(1950);
    const perTick = new Map<number, number>();
    for (const times of visits.values()) {
      expect(times).toHaveLength(1);
      perTick.set(times[0]!, (perTick.get(times[0]!) ?? 0) + 1);
    }
    expect([...perTick.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, slice) => start + 1000 + slice * 100));
    expect(Math.max(...perTick.values())).toBe(100);
    await clock.advance(1000);
    for (const times of visits.values()) {
      expect(times).toHaveLength(2);
      expect(times[1]! - times[0]!).toBe(1000);
    }
    sweep.stop();
  });

  it('stop leaves no timer, and no visit follows it', async () => {
    const clock = new ManualClock();
    const { connections, visits } = recorders(50);
    const sweep = startPingSweep(connections, 1000, clock);
    await clock.advance(1050);
    const visited = [...visits.values()].reduce((sum, times) => sum + times.length, 0);
    expect(visited).toBeGreaterThan(0);
    expect(clock.pendingTimers).toBe(1);
    sweep.stop();
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(5000);
    expect([...visits.values()].reduce((sum, times) => sum + times.length, 0)).toBe(visited);
  });
});
