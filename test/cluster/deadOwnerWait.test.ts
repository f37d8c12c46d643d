import { afterEach, describe, expect, it } from 'vitest';
import { clusterServicesAvailable, TestCluster } from '../support/cluster.ts';
import { api } from '../support/harness.ts';
import type { Json } from '../support/harness.ts';

const available = await clusterServicesAvailable();
// Long enough that "sent early" and "answered after expiry" are far apart on a loaded machine.
const LEASE_MS = 2000;
let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

describe.skipIf(!available)('a command for a session whose dead owner still holds the lease', () => {
  it('waits for the lease to expire and is then answered (202) by a survivor, within lease + 1 s', async () => {
    cluster = await TestCluster.start(2, { leaseMs: LEASE_MS, simChunks: 2, simIntervalMs: 20 });
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const sessionId = String((await api(a.url, 'POST', '/api/sessions')).body['sessionId']);
    expect((await api(a.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'first' })).status).toBe(202);
    const redis = cluster.redis.client();
    const holder = String(await redis.get(`llm-chat:{s:${sessionId}}:lease`));
    const ownerId = holder.split(' ')[0]!;
    expect(ownerId).toBe(String((await api(a.url, 'GET', '/api/status')).body['node']));
    // The lease lives as long as the owner's heartbeat key: kill A right after a renewal, so the
    // lease has nearly all of its time left and waiting for it is unmistakable.
    const heartbeat = `llm-chat:{n:${ownerId}}:alive`;
    const renewalDeadline = Date.now() + 5000;
    while ((await redis.pttl(heartbeat)) < LEASE_MS * 0.9) {
      if (Date.now() > renewalDeadline) throw new Error('no heartbeat renewal seen');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const killedAt = Date.now();
    const exited = a.stop('SIGKILL');
    const askedAt = Date.now();
    const pttl = await redis.pttl(heartbeat);
    // The earliest the dead owner's lease can have expired in Redis.
    const expiresAt = askedAt + pttl;
    await exited;

    const sentAt = Date.now();
    const sent = await api(b.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'after the kill' });
    const answeredAt = Date.now();
    console.log(
      `[deadOwnerWait] sent ${sentAt - killedAt} ms after the kill, lease expired ${expiresAt - killedAt} ms after it, answered ${answeredAt - killedAt} ms after it`,
    );
    expect(pttl).toBeGreaterThan(LEASE_MS * 0.8);
    expect(sentAt - killedAt).toBeLessThan(LEASE_MS / 10);
    expect(sent.status).toBe(202);
    // It waited: no answer before the lease was gone (20 ms for PTTL's rounding and the clock's).
    expect(answeredAt).toBeGreaterThanOrEqual(expiresAt - 20);
    // Bounded: lease + 1 s after the kill, plus 500 ms for what follows the wait (claim and load
    // from PostgreSQL, then the message's commit) on this shared 2-core machine.
    expect(answeredAt - killedAt).toBeLessThan(LEASE_MS + 1000 + 500);
    // Answered by the survivor, which now owns the session, with the history intact.
    expect(String(await redis.get(`llm-chat:{s:${sessionId}}:lease`)).split(' ')[0]).toBe(String((await api(b.url, 'GET', '/api/status')).body['node']));
    const history = (await api(b.url, 'GET', `/api/sessions/${sessionId}`)).body['messages'] as Json[];
    expect(history.filter((message) => message['role'] === 'user').map((message) => message['text'] ?? message['content'])).toEqual(['first', 'after the kill']);
  }, 60_000);
});
