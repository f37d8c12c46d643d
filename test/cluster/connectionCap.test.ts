import { afterAll, describe, expect, it } from 'vitest';
import { clusterServicesAvailable, TestCluster, wsUrlOf } from '../support/cluster.ts';
import { WsClient } from '../support/harness.ts';

const available = await clusterServicesAvailable();
const LEASE_MS = 1000;
let cluster: TestCluster | undefined;
afterAll(async () => {
  await cluster?.stop();
});

describe.skipIf(!available)('--max-connections on a cluster', () => {
  it('is each node\'s own cap: A\'s third WebSocket is refused overloaded (1013) while B still takes two', async () => {
    cluster = await TestCluster.start(2, { leaseMs: LEASE_MS, args: ['--max-connections', '2'] });
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const onA = [(await WsClient.session(wsUrlOf(a))).client, (await WsClient.session(wsUrlOf(a))).client];
    const refused = await WsClient.open(wsUrlOf(a));
    const frame = await refused.waitFor((f) => f.type === 'error' || f.type === 'session');
    expect(frame.type).toBe('error');
    expect(frame['code']).toBe('overloaded');
    expect((await refused.closed()).code).toBe(1013);
    // Past a heartbeat (a third of a lease), so B would know A's count if connections were summed across nodes.
    await new Promise((resolve) => setTimeout(resolve, LEASE_MS));
    const onB = [(await WsClient.session(wsUrlOf(b))).client, (await WsClient.session(wsUrlOf(b))).client];
    expect(onB.map((client) => client.frames[0]?.type)).toEqual(['session', 'session']);
    // And B's own cap holds too.
    const refusedOnB = await WsClient.open(wsUrlOf(b));
    expect((await refusedOnB.waitFor((f) => f.type === 'error' || f.type === 'session'))['code']).toBe('overloaded');
    expect((await refusedOnB.closed()).code).toBe(1013);
    for (const client of [...onA, ...onB]) client.close();
  }, 60_000);
});
