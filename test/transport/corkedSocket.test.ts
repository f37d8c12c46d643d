import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { corkWebSocketForThisTick } from '../../src/transport/corkedSocket.ts';

/** Counts the system-call-level writes of a socket: each `_write` or `_writev` call is one. */
function countWrites(socket: Duplex): { calls: number; chunks: number } {
  const counts = { calls: 0, chunks: 0 };
  const raw = socket as unknown as {
    _write: (chunk: unknown, encoding: string, callback: () => void) => void;
    _writev?: (chunks: unknown[], callback: () => void) => void;
  };
  const write = raw._write.bind(socket);
  raw._write = (chunk, encoding, callback) => {
    counts.calls += 1;
    counts.chunks += 1;
    write(chunk, encoding, callback);
  };
  const writev = raw._writev?.bind(socket);
  if (writev) {
    raw._writev = (chunks, callback) => {
      counts.calls += 1;
      counts.chunks += chunks.length;
      writev(chunks, callback);
    };
  }
  return counts;
}

describe('corkWebSocketForThisTick', () => {
  let server: WebSocketServer | undefined;
  afterEach(() => server?.close());

  it('sends the frames one callback makes as one write, and frames of a later turn in another', async () => {
    server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(server, 'listening');
    const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const received: string[] = [];
    client.on('message', (data) => received.push(data.toString()));
    const [socket] = (await once(server, 'connection')) as [WebSocket];
    await once(client, 'open');
    const raw = (socket as unknown as { _socket: Duplex })._socket;
    const writes = countWrites(raw);

    corkWebSocketForThisTick(socket);
    socket.send('{"type":"chunk","is_last":true}');
    corkWebSocketForThisTick(socket); // a second frame of the same turn: already corked
    socket.send('{"type":"completed"}');
    expect(writes.calls).toBe(0); // nothing leaves before the turn ends…
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes.calls).toBe(1); // …then both frames (header and payload each) in one writev
    expect(writes.chunks).toBe(4);

    corkWebSocketForThisTick(socket);
    socket.send('{"type":"accepted"}');
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes.calls).toBe(2);
    while (received.length < 3) await once(client, 'message');
    expect(received).toEqual(['{"type":"chunk","is_last":true}', '{"type":"completed"}', '{"type":"accepted"}']);
    client.close();
  });

  it('tells its listener once per turn, after the frames were handed to the socket (so what is still buffered is real backlog)', async () => {
    server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(server, 'listening');
    const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const [socket] = (await once(server, 'connection')) as [WebSocket];
    await once(client, 'open');
    const seen: number[] = [];
    const listener = { flushed: () => seen.push(socket.bufferedAmount) };
    expect(corkWebSocketForThisTick(socket, listener)).toBe(true);
    socket.send('x'.repeat(1000));
    expect(corkWebSocketForThisTick(socket, listener)).toBe(true);
    socket.send('y'.repeat(1000));
    expect(socket.bufferedAmount).toBeGreaterThan(2000); // corked: all of it still here
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([0]); // once, and the loopback socket took everything
    client.close();
  });

  it('leaves a closed connection alone', async () => {
    server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(server, 'listening');
    const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const [socket] = (await once(server, 'connection')) as [WebSocket];
    await once(client, 'open');
    socket.terminate();
    expect(corkWebSocketForThisTick(socket)).toBe(false);
    await new Promise((resolve) => setImmediate(resolve));
    client.terminate();
  });
});
