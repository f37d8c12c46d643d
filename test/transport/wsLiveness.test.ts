import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';
import { halfOpenPeer } from '../support/hostilePeers.ts';
import { startLatePongPeer } from '../support/latePongPeer.ts';
import { startSlowLink } from '../support/slowLink.ts';
import type { LatePongPeer } from '../support/latePongPeer.ts';
import { ManualClock } from '../support/manualClock.ts';
import { eventually } from '../support/waiting.ts';

let running: RunningServer | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await running?.close();
  running = undefined;
});

describe('a live peer is not taken for dead', () => {
  it('a peer reading slowly but steadily behind megabytes of unsent chunks stays, though its pong comes back intervals after the ping', async () => {
    const pingMs = 1500;
    // Unsent bytes may grow past the default 1 MiB here: this peer is slow, not stalled.
    running = await startServer({ wsPingMs: pingMs, simChunks: 600, simIntervalMs: 2, maxBufferedBytes: 64 * 1024 * 1024, messagesPerMinute: 0 });
    const link = await startSlowLink({ host: '127.0.0.1', port: Number(new URL(running.url).port) }, 20);
    cleanups.push(() => void link.close());
    // When the server pings (ws's own method, watched), and when the client meets each ping in the byte stream.
    const sentAt: number[] = [];
    const ping = WebSocket.prototype.ping;
    let clientSocket: WebSocket | undefined;
    WebSocket.prototype.ping = function (this: WebSocket, ...args: Parameters<WebSocket['ping']>) {
      if (this !== clientSocket) sentAt.push(Date.now());
      ping.apply(this, args);
    };
    cleanups.push(() => (WebSocket.prototype.ping = ping));
    const client = await WsClient.open(`ws://127.0.0.1:${link.port}/ws`);
    clientSocket = client.socket;
    const readAt: number[] = [];
    client.socket.on('ping', () => readAt.push(Date.now()));
    await client.waitFor((frame) => frame.type === 'session');
    client.send('x'.repeat(30_000)); // 600 chunks × 30 kB ≈ 18 MB
    // Dropped, it would read no more: stop waiting at its close.
    await client.waitFor((frame) => frame['is_last'] === true || client.closeEvent !== undefined, 60_000);
    expect(client.closeEvent).toBeUndefined();
    // Pings arrive in the order sent; the client's ws answers each at once, and the link passes the pong at
    // once: a ping that took longer than 1.5 intervals to be read was answered after the next sweep.
    const lags = readAt.map((at, index) => at - sentAt[index]!);
    
    expect(Math.max(...lags)).toBeGreaterThan(1.5 * pingMs);
    const chunks = client.frames.filter((frame) => frame.type === 'chunk');
    expect(chunks.length).toBe(600);
    client.send('still served');
    await client.waitFor((frame) => (frame['is_last'] === true && Number(frame['seq']) > 600) || client.closeEvent !== undefined, 30_000);
    expect(client.closeEvent).toBeUndefined();
    client.close();
  }, 90_000);

  it('a server whose loop is blocked across a sweep keeps a peer whose pong arrived meanwhile', async () => {
    const pingMs = 1000;
    running = await startServer({ wsPingMs: pingMs });
    // The peer runs in its own process, so it answers while this one (the server's) is blocked.
    const peer: LatePongPeer = await startLatePongPeer(running.wsUrl, 300);
    cleanups.push(() => peer.kill());
    let blockedFrom: number | undefined;
    peer.onPing(() => {
      if (blockedFrom !== undefined) return;
      // Busy from just after the first ping to 0.6 interval past the next sweep; the pong (0.3 interval
      // after the ping) lies unread in the socket when the loop comes back and runs its due timer first.
      blockedFrom = Date.now();
      while (Date.now() - blockedFrom < 1.6 * pingMs);
    });
    await eventually(() => blockedFrom !== undefined, 3 * pingMs);
    expect(blockedFrom).toBeDefined();
    // Two more intervals: the peer keeps answering (0.3 interval late), so it is pinged and kept.
    await eventually(() => peer.pings >= 3 || peer.closeCode !== undefined, 4 * pingMs);
    expect(peer.closeCode).toBeUndefined();
    expect(peer.pings).toBeGreaterThanOrEqual(3);
    expect(running.server.edge()).toMatchObject({ ws: 1, wsTracked: 1 });
  }, 20_000);
});

describe('a dead peer still goes', () => {
  it('a peer that stops reading while a reply streams to it is dropped by the ping (no slow-consumer close), within 4 intervals of the stream; the reading client stays', async () => {
    const pingMs = 300;
    let slowConsumers = 0;
    running = await startServer({
      wsPingMs: pingMs,
      simChunks: 400,
      maxBufferedBytes: 64 * 1024 * 1024,
      messagesPerMinute: 0,
      onSlowConsumer: () => (slowConsumers += 1),
    });
    const port = Number(new URL(running.url).port);
    const { client, sessionId } = await WsClient.session(running.wsUrl);
    // Raw TCP, paused: it reads nothing and answers nothing, so its kernel soon advertises a zero window.
    const peer = await halfOpenPeer(port, `/ws?sessionId=${sessionId}`, { paused: true });
    cleanups.push(() => peer.destroy());
    await eventually(() => running!.server.edge().slots === 2, 2000);
    const startedAt = Date.now();
    client.send('x'.repeat(30_000)); // 400 chunks × 30 kB ≈ 12 MB, more than the kernels hold
    await eventually(() => running!.server.edge().slots === 1, 10 * pingMs);
    expect(running.server.edge().slots).toBe(1);
    // Its slot (freed when the server drops the TCP socket) tells; a paused socket would not see its close.
    expect(Date.now() - startedAt).toBeLessThan(4 * pingMs);
    expect(slowConsumers).toBe(0);
    await client.waitFor((frame) => frame['is_last'] === true, 30_000);
    expect(client.closeEvent).toBeUndefined();
    client.close();
  }, 60_000);
});

describe('the sweep ends with the gateway', () => {
  it('closing the server leaves no sweep timer behind (after it pinged a client)', async () => {
    const clock = new ManualClock();
    running = await startServer({ clock, wsPingMs: 1000 });
    const { client } = await WsClient.session(running.wsUrl);
    let pinged = false;
    client.socket.on('ping', () => (pinged = true));
    await clock.advance(1000);
    await eventually(() => pinged, 2000);
    expect(pinged).toBe(true);
    expect(clock.pendingTimers).toBeGreaterThan(0);
    client.close();
    await running.close();
    running = undefined;
    expect(clock.pendingTimers).toBe(0);
  });
});
