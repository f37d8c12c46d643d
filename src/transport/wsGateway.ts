import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import type { Sessions } from '../actors/sessions.ts';
import type { EventBus, Logger } from '../domain/ports.ts';
import type { Admission } from './admission.ts';
import { WsConnection } from './wsConnection.ts';
import type { WsShared } from './wsConnection.ts';
import { WS_CLOSE, toWireError, wsErrorFrame } from './wireErrors.ts';

export interface WsGatewayOptions {
  registry: Sessions;
  bus: EventBus;
  logger: Logger;
  admission: Admission;
  /** Largest client frame in bytes (default 64 KiB); larger ones close with 1009. */
  maxFrameBytes?: number;
  /** A socket whose unsent bytes pass this is closed with 1013 (default 1 MiB). */
  maxBufferedBytes?: number;
  /** Called when a slow consumer is dropped. */
  onSlowConsumer?: () => void;
  /** Told of every error frame sent to a client (metrics). */
  onClientError?: (code: string) => void;
}

export interface WsGateway {
  /** Takes an HTTP upgrade for `/ws`; refuses any other path. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  readonly connectionCount: number;
  /** Sends one text frame to every open socket (the shutdown notice). */
  broadcast(text: string): void;
  close(code?: number, reason?: string): void;
}

/**
 * `/ws`: a connection opens a new session, or attaches to `?sessionId=` (and
 * resumes after `?lastSeq=`). The first frame names the session; then every
 * event of that session is forwarded. A disconnect never cancels generation.
 */
export function createWsGateway(options: WsGatewayOptions): WsGateway {
  const { admission } = options;
  const shared: WsShared = {
    registry: options.registry,
    bus: options.bus,
    logger: options.logger,
    admission,
    maxBufferedBytes: options.maxBufferedBytes ?? 1024 * 1024,
    onSlowConsumer: options.onSlowConsumer,
    onClientError: options.onClientError,
  };
  const server = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes ?? 64 * 1024 });

  // A refused client still completes the handshake: a browser cannot read an
  // HTTP 503 body on a failed upgrade, but it can read an error frame.
  const refuse = (socket: WebSocket, error: unknown) => {
    const wire = toWireError(error);
    options.onClientError?.(wire.code);
    socket.send(wsErrorFrame(wire));
    socket.close(WS_CLOSE.tryAgainLater, wire.code);
  };

  return {
    handleUpgrade(request, socket, head) {
      const requestUrl = request.url ?? '/';
      const { pathname } = new URL(requestUrl, 'http://localhost');
      if (pathname !== '/ws') {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      admission.admitConnection(request.socket.remoteAddress ?? 'unknown').then(
        (release) => {
          if (socket.destroyed) return release();
          server.handleUpgrade(request, socket, head, (websocket) => new WsConnection(shared, websocket, requestUrl, release));
        },
        (error: unknown) => {
          if (socket.destroyed) return;
          server.handleUpgrade(request, socket, head, (websocket) => refuse(websocket, error));
        },
      );
    },
    get connectionCount() {
      return server.clients.size;
    },
    broadcast(text) {
      for (const client of server.clients) if (client.readyState === client.OPEN) client.send(text);
    },
    close(code = WS_CLOSE.goingAway, reason = 'server shutting down') {
      for (const client of server.clients) client.close(code, reason);
      server.close();
    },
  };
}
