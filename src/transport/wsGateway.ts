import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import type { Sessions } from '../actors/sessions.ts';
import { ChatError } from '../domain/errors.ts';
import type { Clock, EventBus, Logger } from '../domain/ports.ts';
import { systemClock } from '../infra/systemClock.ts';
import type { Admission } from './admission.ts';
import type { Caller } from './authenticate.ts';
import type { CallerSessions } from './callerSessions.ts';
import type { KeyConnections } from './keyConnections.ts';
import type { OriginPolicy } from './origins.ts';
import type { BufferBudget } from './bufferBudget.ts';
import { closeGracefully } from './closeGracefully.ts';
import { startPingSweep } from './pingSweep.ts';
import { WsConnection } from './wsConnection.ts';
import type { WsShared } from './wsConnection.ts';
import { WS_CLOSE, toWireError, wsErrorFrame } from './wireErrors.ts';
import { clientAddressOf } from './clientAddress.ts';
import { withDeadline } from './withDeadline.ts';
import { AdmittedConnection } from './admittedConnection.ts';

export interface WsGatewayOptions {
  registry: Sessions;
  bus: EventBus;
  logger: Logger;
  admission: Admission;
  sessions: CallerSessions;
  /** Who opens the socket (throws `unauthorized`, `rate_limited`, …: an error frame, then close 4401 or 1013). */
  identify: (request: IncomingMessage) => Promise<Caller>;
  /** Browser pages of other origins get a plain `403` on the upgrade. */
  origins: OriginPolicy;
  /** Counts each key's sockets and closes them when it is revoked. */
  keyConnections: KeyConnections;
  /** The node-wide budget of unsent bytes (shared with SSE). */
  budget: BufferBudget;
  /** Largest client frame in bytes (default 64 KiB); larger ones close with 1009. */
  maxFrameBytes?: number;
  /** A socket whose unsent bytes pass this is closed with 1013 (default 1 MiB). */
  maxBufferedBytes?: number;
  /**
   * Every open socket is pinged this often; one that has neither answered the
   * previous ping nor made progress since (sent bytes, or taken some of ours
   * that were backed up) is dropped (default 30 s; 0 = never).
   */
  pingIntervalMs?: number;
  /** Times the ping sweep (default: the system clock). */
  clock?: Clock;
  /** How long a close handshake may take before the socket is dropped (default 2 s). */
  closeGraceMs?: number;
  /**
   * Longest a handshake waits for admission (who it is, room for it) before
   * it is answered `unavailable` (default 3 s: above Redis' and the stores'
   * own 1–2 s command bounds, so those answer first when they work).
   */
  admitTimeoutMs?: number;
  /** Called when a slow consumer is dropped. */
  onSlowConsumer?: () => void;
  /** Told of every error frame sent to a client (metrics). */
  onClientError?: (code: string) => void;
}

export interface WsGateway {
  /** Takes an HTTP upgrade for `/ws`; refuses any other path. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Open sockets (ws's own client set, refused ones included while they close). */
  readonly connectionCount: number;
  /** Connections the gateway tracks (pinged, attached or attaching to a session). */
  readonly attachedCount: number;
  /** Sends one text frame to every open socket (the shutdown notice). */
  broadcast(text: string): void;
  /**
   * Closes every socket with `code`; a peer that has not finished the close
   * handshake within `graceMs` (default: the gateway's close grace) is
   * dropped. Resolves once every socket is closed.
   */
  close(options?: { code?: number; reason?: string; graceMs?: number }): Promise<void>;
}

/**
 * `/ws`: a connection opens a new session, or attaches to `?sessionId=` (and
 * resumes after `?lastSeq=`). The first frame names the session; then every
 * event of that session is forwarded. A disconnect never cancels generation.
 */
export function createWsGateway(options: WsGatewayOptions): WsGateway {
  const { admission } = options;
  const closeGraceMs = options.closeGraceMs ?? 2000;
  const admitTimeoutMs = options.admitTimeoutMs ?? 3000;
  const connections = new Set<WsConnection>();
  const shared: WsShared = {
    registry: options.registry,
    bus: options.bus,
    logger: options.logger,
    admission,
    sessions: options.sessions,
    budget: options.budget,
    closeGraceMs,
    maxBufferedBytes: options.maxBufferedBytes ?? 1024 * 1024,
    onSlowConsumer: options.onSlowConsumer,
    onClientError: options.onClientError,
    onClosed: (connection) => connections.delete(connection),
  };
  const server = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes ?? 64 * 1024 });

  const pingIntervalMs = options.pingIntervalMs ?? 30_000;
  const pinger = pingIntervalMs > 0 ? startPingSweep(connections, pingIntervalMs, options.clock ?? systemClock) : undefined;

  // A refused client still completes the handshake: a browser cannot read an
  // HTTP 503 body on a failed upgrade, but it can read an error frame.
  const refuse = (socket: WebSocket, error: unknown) => {
    const wire = toWireError(error);
    options.onClientError?.(wire.code);
    socket.send(wsErrorFrame(wire));
    void closeGracefully(socket, wire.code === 'unauthorized' ? WS_CLOSE.unauthorized : WS_CLOSE.tryAgainLater, wire.code, closeGraceMs);
  };

  // Who it is, then whether this node and this key have room for one more socket.
  const admit = async (request: IncomingMessage): Promise<AdmittedConnection> => {
    const caller = await options.identify(request);
    const admitted = new AdmittedConnection(caller, await admission.admitConnection(clientAddressOf(request)));
    try {
      // Revoked before the handshake ends: the connection is told as soon as it exists.
      admitted.tracked(options.keyConnections.open(caller, () => admitted.revoke()));
    } catch (error) {
      admitted.release();
      throw error;
    }
    return admitted;
  };

  return {
    handleUpgrade(request, socket, head) {
      const requestUrl = request.url ?? '/';
      const { pathname } = new URL(requestUrl, 'http://localhost');
      if (pathname !== '/ws') {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      if (!options.origins.allows(request)) {
        socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      // The slots (the node's and the key's) follow the TCP socket, whatever
      // happens to the handshake: ws answers a malformed one (400) itself and
      // never calls back, and the peer may hang up while admission is decided.
      let gone = false;
      const onGone = () => (gone = true);
      socket.once('close', onGone);
      // Admission may wait on Redis (cluster-wide limits) or the key store:
      // whatever hangs there, the handshake is answered (`unavailable`, try
      // again) within the bound, never left open with the socket held.
      const admitting = withDeadline(
        admit(request),
        admitTimeoutMs,
        () => new ChatError('unavailable', 'The server could not admit the connection in time; try again shortly.', { retryAfterMs: 1000 }),
        (late) => late.release(),
      );
      admitting.then(
        (admitted) => {
          socket.off('close', onGone);
          if (gone || socket.destroyed) return admitted.release();
          admitted.releaseWhenClosed(socket);
          server.handleUpgrade(request, socket, head, (websocket) => {
            const connection = new WsConnection(shared, websocket, requestUrl, admitted.caller);
            connections.add(connection);
            admitted.attach(connection);
          });
        },
        (error: unknown) => {
          socket.off('close', onGone);
          if (gone || socket.destroyed) return;
          server.handleUpgrade(request, socket, head, (websocket) => refuse(websocket, error));
        },
      );
    },
    get connectionCount() {
      return server.clients.size;
    },
    get attachedCount() {
      return connections.size;
    },
    broadcast(text) {
      for (const client of server.clients) if (client.readyState === client.OPEN) client.send(text);
    },
    async close({ code = WS_CLOSE.goingAway, reason = 'server shutting down', graceMs = closeGraceMs } = {}) {
      pinger?.stop();
      await Promise.all([...server.clients].map((client) => closeGracefully(client, code, reason, graceMs)));
      server.close();
    },
  };
}
