import { createServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import { Server } from 'socket.io';
import { peerSessionId, streamPeerReply } from './peerReply.ts';
import type { PeerOptions } from './peerReply.ts';

/** Where the Socket.IO peer listens (Socket.IO's default path). */
export const SOCKET_IO_PATH = '/socket.io';

/**
 * The Socket.IO peer: Socket.IO 4 as an application would use it for this
 * job, WebSocket transport only (no long-polling upgrade dance), no
 * compression, one Socket.IO `message` event per frame carrying the same
 * frame object llm-chat sends, on the same schedule (bench/peerReply.ts).
 * A client message is `socket.send(text)`.
 */
export function createSocketIoServer(options: PeerOptions = {}): { http: HttpServer; io: Server } {
  const http = createServer((_request, response) => response.writeHead(404).end());
  const io = new Server(http, {
    path: SOCKET_IO_PATH,
    transports: ['websocket'],
    serveClient: false,
    perMessageDeflate: false,
    maxHttpBufferSize: 64 * 1024,
  });

  io.on('connection', (socket) => {
    let seq = 0;
    const session = { sessionId: peerSessionId(), nextSeq: () => (seq += 1) };
    const send = (frame: Record<string, unknown>) => {
      if (!socket.connected) return false;
      socket.send(frame);
      return true;
    };
    send({ type: 'session', sessionId: session.sessionId });
    socket.on('message', (text: unknown) => streamPeerReply(options, session, String(text), send));
  });
  return { http, io };
}
