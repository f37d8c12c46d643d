import { afterEach, describe, expect, it } from 'vitest';
import { crowd } from '../support/crowd.ts';
import { startServer } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';
import { ADMIN_TOKEN, createKey } from '../support/keys.ts';

let running: RunningServer | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

// The limits' defaults, as `npm start` has them: 50 new connections per IP per second and a burst of 1,000
// a minute; per key 600 sessions a minute (plus 600 per 10 minutes) and 10,000 connections. The clients run
// in another process, as real ones would. Load shedding (--shed-lag-ms) is off here: it answers the
// machine's own event-loop lag, and on a shared 2-core box under load (measured: 0.65–1.2 s of server CPU
// for this burst, loop gaps up to 1.5 s at load average 10) it would refuse for reasons that are not the
// limits under test.
describe('1,000 connections opened at the same moment from one address, with the default limits', () => {
  it('all succeed without a key (--auth none: the per-IP limit and its burst)', async () => {
    running = await startServer({ connRatePerIp: 50, connBurstPerIp: 1000, shedLagMs: 0 });
    expect(await crowd(running.wsUrl, 1000)).toEqual({ session: 1000 });
    expect(running.server.registry.activeCount).toBe(1000);
  }, 60_000);

  it('all succeed with one key (its sessions, connections and burst)', async () => {
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN }, shedLagMs: 0 });
    const key = await createKey(running.url, 'load test');
    expect(await crowd(running.wsUrl, 1000, key.headers)).toEqual({ session: 1000 });
    expect(running.server.registry.liveCountOf(key.id)).toBe(1000);
  }, 60_000);

  it('a sustained flood from one address is refused once the rate and the burst are spent', async () => {
    running = await startServer({ connRatePerIp: 50, connBurstPerIp: 1000, shedLagMs: 0 });
    // Within one second: 50 from the rate and 1,000 from the burst, then rate_limited.
    const results = await crowd(running.wsUrl, 1300);
    expect(results['session']).toBeGreaterThanOrEqual(1050);
    expect(results['error:rate_limited']).toBeGreaterThanOrEqual(1);
    expect((results['session'] ?? 0) + (results['error:rate_limited'] ?? 0)).toBe(1300);
  }, 60_000);
});
