import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { WebSocketServer } from 'ws';
import { peerSessionId, streamPeerReply } from './peerReply.ts';
import type { PeerOptions } from './peerReply.ts';

export type BaselineOptions = PeerOptions;

/**
 * The floor we measure against: a bare `ws` server, no actors, no bus, no
 * store, speaking the same frames on the same schedule as llm-chat's
 * simulated model (bench/peerReply.ts).
 */
export function createBaselineServer(options: BaselineOptions = {}): Server {
  const http = createServer((_request, response) => response.writeHead(404).end());
  const wss = new WebSocketServer({ server: http, path: '/ws', maxPayload: 64 * 1024 });

  wss.on('connection', (socket) => {
    let seq = 0;
    const session = { sessionId: peerSessionId(), nextSeq: () => (seq += 1) };
    const send = (frame: Record<string, unknown>) => {
      if (socket.readyState !== socket.OPEN) return false;
      socket.send(JSON.stringify(frame));
      return true;
    };
    send({ type: 'session', sessionId: session.sessionId });
    socket.on('message', (data) => streamPeerReply(options, session, data.toString(), send));
  });
  return http;
}
