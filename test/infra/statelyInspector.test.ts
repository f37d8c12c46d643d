import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { connectStately } from '../../src/infra/statelyInspector.ts';
import { startServer, WsClient } from '../support/harness.ts';

describe('--inspect-stately forwarding', () => {
  it("sends every session's inspection events to a WebSocket relay, with contexts flattened and events reduced to their type", async () => {
    // A stand-in for @statelyai/inspect's relay: a plain WebSocket server on loopback.
    const relay = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((resolve) => relay.once('listening', resolve));
    const received: Record<string, unknown>[] = [];
    relay.on('connection', (socket) => socket.on('message', (data) => received.push(JSON.parse(data.toString()) as Record<string, unknown>)));

    const forwarder = await connectStately(`ws://127.0.0.1:${(relay.address() as AddressInfo).port}`, silentLogger);
    const running = await startServer({ inspect: forwarder.inspect, simIntervalMs: 0 });
    const { client } = await WsClient.session(running.wsUrl);
    client.send('a private thought');
    await client.waitFor((frame) => frame.type === 'completed');
    const deadline = Date.now() + 5000;
    while (!received.some((event) => event['type'] === '@xstate.snapshot') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    client.close();
    await running.close();
    await forwarder.stop();
    relay.close();

    expect(received.map((event) => event['type'])).toEqual(expect.arrayContaining(['@xstate.actor', '@xstate.event', '@xstate.snapshot']));
    const text = JSON.stringify(received);
    expect(text).not.toContain('a private thought');
    expect(text).toContain('"conversation":"[object]"');
  });
});
