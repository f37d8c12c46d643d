import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { WebSocketServer } from 'ws';

export interface BaselineOptions {
  simChunks?: number;
  simIntervalMs?: number;
}

/**
 * The floor we measure against: a bare `ws` server, no actors, no bus, no
 * store, speaking the same frames on the same schedule (chunk k after k
 * sequential waits of `simIntervalMs`; at 0 ms a yield to the event loop).
 */
export function createBaselineServer(options: BaselineOptions = {}): Server {
  const chunks = options.simChunks ?? 5;
  const intervalMs = options.simIntervalMs ?? 400;
  const http = createServer((_request, response) => response.writeHead(404).end());
  const wss = new WebSocketServer({ server: http, path: '/ws', maxPayload: 64 * 1024 });
  const wait = (then: () => void) => (intervalMs > 0 ? setTimeout(then, intervalMs) : setImmediate(then));

  wss.on('connection', (socket) => {
    const sessionId = randomBytes(16).toString('base64url');
    let seq = 0;
    socket.send(JSON.stringify({ type: 'session', sessionId }));
    socket.on('message', (data) => {
      const text = data.toString();
      const messageId = randomUUID();
      let index = 0;
      const next = () => {
        if (socket.readyState !== socket.OPEN) return;
        index += 1;
        seq += 1;
        socket.send(
          JSON.stringify({ type: 'chunk', sessionId, messageId, seq, chunk: `chunk ${index}: ${text}`, is_last: index === chunks }),
        );
        if (index < chunks) wait(next);
      };
      wait(next);
    });
  });
  return http;
}
