import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { RawData, WebSocket } from 'ws';
import type { SessionRegistry } from '../actors/sessionRegistry.ts';
import { ChatError } from '../domain/errors.ts';
import type { ChatEvent, StopReason } from '../domain/events.ts';
import type { EventBus, Logger, Unsubscribe } from '../domain/ports.ts';
import { parseClientFrame } from './clientFrames.ts';
import { frameJson } from './frames.ts';
import { newRequestId } from './requestContext.ts';
import { parseSeq } from './resumePosition.ts';
import { watchSession } from './watchSession.ts';
import { WS_CLOSE, isInternal, toWireError, wsErrorFrame } from './wireErrors.ts';

export interface WsGatewayOptions {
  registry: SessionRegistry;
  bus: EventBus;
  logger: Logger;
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

const CLOSE_FOR_STOP: Record<StopReason, [number, string]> = {
  deleted: [WS_CLOSE.sessionDeleted, 'session deleted'],
  restart_limit: [WS_CLOSE.internalError, 'session stopped'],
  crashed: [WS_CLOSE.internalError, 'session stopped'],
  shutdown: [WS_CLOSE.goingAway, 'server shutting down'],
};

/**
 * `/ws`: a connection opens a new session, or attaches to `?sessionId=` (and
 * resumes after `?lastSeq=`). The first frame names the session; then every
 * event of that session is forwarded. A disconnect never cancels generation.
 */
export function createWsGateway(options: WsGatewayOptions): WsGateway {
  const { registry, bus, logger } = options;
  const maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  const server = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes ?? 64 * 1024 });

  server.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    // Passed in each line's fields rather than as a child logger: a pino child
    // costs about 2 KB, a lot next to a connection's own 8 KB.
    const connectionId = newRequestId();
    let sessionId: string | undefined;
    let unsubscribe: Unsubscribe | undefined;
    let closed = false;
    // Client frames are handled one after another, in arrival order, even while attaching.
    let inbox: Promise<void>;

    const sendText = (text: string) => {
      if (socket.readyState !== socket.OPEN) return;
      socket.send(text);
      if (socket.bufferedAmount > maxBufferedBytes) {
        options.onSlowConsumer?.();
        logger.warn({ connectionId, sessionId, buffered: socket.bufferedAmount }, 'closing slow websocket consumer');
        socket.close(WS_CLOSE.tryAgainLater, 'slow consumer');
        socket.terminate();
      }
    };

    const sendError = (error: unknown, messageId?: string) => {
      const wire = toWireError(error);
      options.onClientError?.(wire.code);
      if (isInternal(wire)) logger.error({ connectionId, sessionId, err: String(error) }, 'websocket request failed');
      sendText(wsErrorFrame(wire, messageId));
    };

    const deliver = (event: ChatEvent) => {
      const json = frameJson(event);
      if (json !== null) sendText(json);
      if (event.type === 'session.stopped') {
        const [code, reason] = CLOSE_FOR_STOP[event.reason];
        socket.close(code, reason);
      }
    };

    const attach = async () => {
      const requested = url.searchParams.get('sessionId');
      const afterSeq = parseSeq(url.searchParams.get('lastSeq') ?? url.searchParams.get('lastEventId'));
      const session = requested === null ? await registry.create() : await registry.find(requested);
      if (!session) {
        sendError(new ChatError('session_not_found'));
        socket.close(WS_CLOSE.sessionNotFound, 'session not found');
        return;
      }
      sessionId = session.sessionId;
      logger.debug({ connectionId, sessionId, resumeAfter: afterSeq }, 'websocket attached');
      sendText(JSON.stringify({ type: 'session', sessionId }));
      const stop = await watchSession(bus, session.sessionId, afterSeq, deliver);
      if (closed) stop();
      else unsubscribe = stop;
    };

    const handle = async (data: RawData, isBinary: boolean) => {
      if (closed || sessionId === undefined) return;
      try {
        if (isBinary) throw new ChatError('bad_request', 'Binary frames are not supported; send text.');
        const frame = parseClientFrame(data.toString());
        const session = await registry.find(sessionId);
        if (!session) throw new ChatError('session_not_found');
        if (frame.type === 'message') session.send(frame.text);
        else session.cancel();
      } catch (error) {
        sendError(error);
      }
    };

    inbox = attach().catch((error: unknown) => {
      sendError(error);
      socket.close(WS_CLOSE.tryAgainLater, 'could not open session');
    });
    socket.on('message', (data, isBinary) => {
      inbox = inbox.then(() => handle(data, isBinary));
    });
    socket.on('close', (code) => {
      logger.debug({ connectionId, sessionId, code }, 'websocket closed');
      closed = true;
      unsubscribe?.();
      unsubscribe = undefined;
    });
    socket.on('error', (error) => logger.debug({ connectionId, sessionId, err: String(error) }, 'websocket error'));
  });

  return {
    handleUpgrade(request, socket, head) {
      const { pathname } = new URL(request.url ?? '/', 'http://localhost');
      if (pathname !== '/ws') {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      server.handleUpgrade(request, socket, head, (websocket) => server.emit('connection', websocket, request));
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
