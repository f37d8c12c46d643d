import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterServicesAvailable, TestCluster } from '../support/cluster.ts';
import { api } from '../support/harness.ts';
import type { Json } from '../support/harness.ts';
import { ADMIN_TOKEN, createKey } from '../support/keys.ts';

const available = await clusterServicesAvailable();
let cluster: TestCluster;
beforeAll(async () => {
  if (available) cluster = await TestCluster.start(2, { args: ['--auth', 'keys', '--admin-token', ADMIN_TOKEN] });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

describe.skipIf(!available)('per-key limits with two nodes', () => {
  it("a key's sessionsPerMinute is counted across nodes", async () => {
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    // 2 a minute plus a burst of 2 more: four sessions in all, alternating nodes (two on each).
    const key = await createKey(a.url, 'shared', { sessionsPerMinute: 2 });
    for (const node of [a, b, a, b]) expect((await api(node.url, 'POST', '/api/sessions', undefined, key.headers)).status).toBe(201);
    // Counted per node, A would have spent 2 of its 4 and let this one in.
    for (const node of [a, b]) {
      const refused = await api(node.url, 'POST', '/api/sessions', undefined, key.headers);
      expect(refused.status).toBe(429);
      expect((refused.body['error'] as Json)['code']).toBe('rate_limited');
    }
  });

  it("a key's messagesPerMinute is counted across nodes, whichever node owns the session", async () => {
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    // 1 a minute plus a burst of 1: two messages in all, one through each node.
    const key = await createKey(a.url, 'talker', { messagesPerMinute: 1 });
    const sessionId = String((await api(a.url, 'POST', '/api/sessions', undefined, key.headers)).body['sessionId']);
    for (const node of [a, b]) {
      expect((await api(node.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'hello' }, key.headers)).status).toBe(202);
    }
    for (const node of [a, b]) {
      const refused = await api(node.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'again' }, key.headers);
      expect(refused.status).toBe(429);
      expect((refused.body['error'] as Json)['code']).toBe('rate_limited');
    }
  });
});
