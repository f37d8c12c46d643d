import { afterEach, describe, expect, it } from 'vitest';
import { createInProcessBus } from '../../src/infra/inProcessBus.ts';
import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import { api, SseClient, startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';
import { flaky } from '../support/flakyStore.ts';
import { countingBus, halfOpenPeer, hangUpAfterUpgrade, hangUpDuringHandshake, hangUpSse, malformedUpgrade, slowStore } from '../support/hostilePeers.ts';
import { eventually, wait } from '../support/waiting.ts';

let running: RunningServer | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

/** A valid-looking session id: 22 base64url characters (`F…` ones fail to load in slowStore). */
const fakeId = (index: number, prefix = 'u') => `${prefix}${String(index).padStart(21, '0')}`;

describe('nothing leaks', () => {
  it('10,000 malformed upgrades and early hang-ups, mixed: then no slot, socket, stream or bus listener is held and a real client is served', async () => {
    const bus = countingBus(createInProcessBus());
    running = await startServer({ store: slowStore(createMemoryStore(), 15), bus, connRatePerIp: 0, messagesPerMinute: 0, maxConnections: 500 });
    const { server } = running;
    const port = Number(new URL(running.url).port);
    const stored = await api(running.url, 'POST', '/api/sessions'); // a real session, to attach to
    const sessionId = String(stored.body['sessionId']);
    const total = 10_000;
    const kinds = [
      (index: number) => malformedUpgrade(port, index),
      () => hangUpDuringHandshake(port),
      () => hangUpAfterUpgrade(port), // a new session: the slow store's create is in flight
      (index: number) => hangUpAfterUpgrade(port, `/ws?sessionId=${fakeId(index)}`), // a slow load of an unknown id
      (index: number) => hangUpSse(port, `/sse/${fakeId(index)}`, 5), // hung up while the session loads
      (index: number) => hangUpSse(port, `/sse/${fakeId(index, 'F')}`, 30), // the load fails (an error during activation)
      () => hangUpSse(port, `/sse/${sessionId}`, 1),
    ];
    const statuses = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      for (let index = next++; index < total; index = next++) {
        const outcome = await kinds[index % kinds.length]!(index);
        if (typeof outcome === 'string') statuses.set(outcome, (statuses.get(outcome) ?? 0) + 1);
      }
    };
    // At most 100 in flight, well under the 500-connection cap: a leak of a few hundred slots would refuse the real client below.
    await Promise.all(Array.from({ length: 100 }, worker));
    expect([...statuses.keys()].sort()).toEqual(['HTTP/1.1 400 Bad Request', 'HTTP/1.1 405 Method Not Allowed']);

    const empty = { slots: 0, ws: 0, wsTracked: 0, sse: 0, bufferedBytes: 0 };
    await eventually(() => JSON.stringify(server.edge()) === JSON.stringify(empty) && bus.listeners === 0, 10_000);
    expect(server.edge()).toEqual(empty);
    expect(bus.listeners).toBe(0);

    // The failing loads made the store unhealthy; its next probe (≤ 250 ms apart while failing) finds it up.
    const deadline = Date.now() + 5000;
    while ((await api(running.url, 'GET', '/readyz')).status !== 200 && Date.now() < deadline) await wait(50);
    const { client, sessionId: fresh } = await WsClient.session(running.wsUrl);
    const sse = await SseClient.open(`${running.url}/sse/${fresh}`);
    client.send('still serving');
    await client.waitFor((frame) => frame['is_last'] === true);
    await sse.waitFor(() => sse.chunks.some((chunk) => chunk['is_last'] === true));
    expect(server.edge().slots).toBe(2);
    client.close();
    sse.close();
    await eventually(() => server.edge().slots === 0 && bus.listeners === 0, 5000);
    expect(server.edge().slots).toBe(0);
    expect(bus.listeners).toBe(0);
  }, 120_000);

  it('three bogus upgrades with maxConnections 3 no longer lock everyone out', async () => {
    running = await startServer({ maxConnections: 3 });
    const port = Number(new URL(running.url).port);
    for (let variant = 0; variant < 3; variant += 1) expect(await malformedUpgrade(port, variant)).toMatch(/^HTTP\/1.1 40[05] /);
    await eventually(() => running!.server.edge().slots === 0, 2000);
    const { client } = await WsClient.session(running.wsUrl);
    client.close();
  });
});

describe('dead peers go', () => {
  it('a half-open peer that never answers pings is dropped by the next ping (within 2 intervals of the first) and its slot released; a live client stays', async () => {
    const pingMs = 400;
    running = await startServer({ wsPingMs: pingMs });
    const port = Number(new URL(running.url).port);
    const { client } = await WsClient.session(running.wsUrl);
    const peer = await halfOpenPeer(port);
    const openedAt = Date.now();
    let firstPingAt: number | undefined;
    let closedAt: number | undefined;
    peer.on('data', (data: Buffer) => {
      // A server's ping without payload is the two bytes 0x89 0x00 (JSON text frames never hold them).
      if (firstPingAt === undefined && data.some((byte, index) => byte === 0x89 && data[index + 1] === 0x00)) firstPingAt = Date.now();
    });
    peer.on('close', () => (closedAt = Date.now()));
    await eventually(() => running!.server.edge().slots === 2, 2000);
    expect(running.server.edge().slots).toBe(2);
    await eventually(() => closedAt !== undefined && running!.server.edge().slots === 1, 3000);
    expect(closedAt).toBeDefined();
    // Dropped at the ping after the one it did not answer (about one interval; the bound leaves the timer an interval late).
    // A first ping in the same read as the 101 is not seen: then the time counts from the handshake, which came before it.
    expect(closedAt! - (firstPingAt ?? openedAt)).toBeLessThan(2 * pingMs);
    expect(running.server.edge()).toMatchObject({ slots: 1, ws: 1, wsTracked: 1 });
    // The real client answers every ping (ws does it by itself) and is still served, four intervals on.
    await wait(4 * pingMs);
    expect(client.closeEvent).toBeUndefined();
    client.send('alive');
    await client.waitFor((frame) => frame['is_last'] === true);
    client.close();
  });
});

describe('a store failure while a WebSocket opens', () => {
  it('closes it with 1013 after a store_unavailable error frame (transient), for a new session and for an attach', async () => {
    const store = flaky(createMemoryStore());
    running = await startServer({ store, sessionTtlMs: 1 });
    const created = await api(running.url, 'POST', '/api/sessions');
    const sessionId = String(created.body['sessionId']);
    // Passivated by the sweeper (TTL 1 ms), so attaching must load it from the store.
    await eventually(() => running!.server.registry.peek(sessionId) === undefined, 2000);
    expect(running.server.registry.peek(sessionId)).toBeUndefined();
    store.down = true;
    for (const url of [running.wsUrl, `${running.wsUrl}?sessionId=${sessionId}`]) {
      const client = await WsClient.open(url);
      expect((await client.closed()).code).toBe(1013);
      expect(client.frames).toEqual([{ type: 'error', code: 'store_unavailable', message: expect.any(String) }]);
    }
    await eventually(() => running!.server.edge().slots === 0, 3000);
    expect(running.server.edge().slots).toBe(0);
    store.down = false;
    // Store health comes back with the next successful probe (at most 250 ms apart while failing):
    // a client retrying as the page does is served within the 5 s the guarantee allows.
    const deadline = Date.now() + 5000;
    for (;;) {
      const client = await WsClient.open(`${running.wsUrl}?sessionId=${sessionId}`);
      const first = await client.waitFor(() => true);
      client.close();
      if (first.type === 'session') break;
      expect(first).toMatchObject({ type: 'error', code: 'store_unavailable' });
      if (Date.now() > deadline) throw new Error('not served within 5 s of the store coming back');
      await wait(100);
    }
  });
});
