import type { RawData, WebSocket } from 'ws';
import type { Sessions } from '../actors/sessions.ts';
import { ChatError } from '../domain/errors.ts';
import type { ChatEvent, StopReason } from '../domain/events.ts';
import type { EventBus, Logger, Unsubscribe } from '../domain/ports.ts';
import type { Admission } from './admission.ts';
import { accessOf } from './authenticate.ts';
import type { Caller } from './authenticate.ts';
import type { CallerSessions } from './callerSessions.ts';
import type { BufferBudget, BufferedStream } from './bufferBudget.ts';
import { closeGracefully } from './closeGracefully.ts';
import { parseClientFrame } from './clientFrames.ts';
import { pendingToKeep, progressSince, tcpCounters } from './peerProgress.ts';
import type { TcpCounters } from './peerProgress.ts';
import { corkWebSocketForThisTick } from './corkedSocket.ts';
import { frameJson } from './frames.ts';
import { newRequestId } from './requestContext.ts';
import { parseSeq } from './resumePosition.ts';
import { watchSession } from './watchSession.ts';
import type { WatchSink } from './watchSession.ts';
import { WS_CLOSE, isInternal, toWireError, wsErrorFrame } from './wireErrors.ts';

/** What every connection of one gateway shares. */
export interface WsShared {
  registry: Sessions;
  bus: EventBus;
  logger: Logger;
  admission: Admission;
  /** Sessions as each connection's caller sees them. */
  sessions: CallerSessions;
  maxBufferedBytes: number;
  /** The node-wide budget of unsent bytes every connection reports to. */
  budget: BufferBudget;
  /** How long a close handshake may take before the socket is dropped. */
  closeGraceMs: number;
  onSlowConsumer?: () => void;
  /** Told of every error frame sent to a client (metrics). */
  onClientError?: (code: string) => void;
  /** Told when a connection has closed (the gateway's set of connections). */
  onClosed(connection: WsConnection): void;
}

const CLOSE_FOR_STOP: Record<StopReason, [number, string]> = {
  deleted: [WS_CLOSE.sessionDeleted, 'session deleted'],
  restart_limit: [WS_CLOSE.internalError, 'session stopped'],
  crashed: [WS_CLOSE.internalError, 'session stopped'],
  shutdown: [WS_CLOSE.goingAway, 'server shutting down'],
  unavailable: [WS_CLOSE.tryAgainLater, 'cluster unavailable'],
};

const CLOSE_FOR_REFUSAL: Partial<Record<string, number>> = {
  bad_request: 1008,
  overloaded: WS_CLOSE.tryAgainLater,
  rate_limited: WS_CLOSE.tryAgainLater,
  // Transient: the page retries with backoff (1011 would read as final).
  store_unavailable: WS_CLOSE.tryAgainLater,
  // Many nodes, Redis unreachable: as transient.
  unavailable: WS_CLOSE.tryAgainLater,
};

// The connection each socket belongs to, for the socket's listeners: those are
// shared by every connection (the socket is their `this`), not four closures
// made per connection.
const connectionOf = new WeakMap<WebSocket, WsConnection>();

/**
 * One WebSocket client. A class, not a bag of closures: 19,000 of them share
 * one prototype, and memory per idle connection is a target we measure
 * (listeners as arrow fields were ~1.4 KB of each connection's heap in the
 * 5,000-connection burst).
 */
export class WsConnection implements BufferedStream, WatchSink {
  readonly #shared: WsShared;
  readonly #socket: WebSocket;
  readonly #caller: Caller;
  // Passed in each line's fields rather than as a child logger: a pino child
  // costs about 2 KB, a lot next to a connection's own.
  readonly #connectionId = newRequestId();
  #sessionId: string | undefined;
  #unsubscribe: Unsubscribe | undefined;
  #closed = false;
  // Set at each ping, cleared by the pong. Still set at the next visit, the peer is gone unless its
  // TCP socket moved since the ping (see peerProgress.ts): fields, not an object, to keep connections small.
  #awaitingPong = false;
  #pingedAt = -Infinity;
  #readAtPing = 0;
  #completedAtPing = 0;
  #pendingAtPing = -1;
  // Client frames are handled one after another, in arrival order, even while attaching.
  #inbox: Promise<void>;

  // The admission slot is not held here: the gateway releases it (and the key's) when the TCP socket closes.
  constructor(shared: WsShared, socket: WebSocket, requestUrl: string, caller: Caller) {
    this.#shared = shared;
    this.#socket = socket;
    this.#caller = caller;
    connectionOf.set(socket, this);
    socket.on('message', WsConnection.#onMessage);
    socket.on('close', WsConnection.#onClose);
    socket.on('error', WsConnection.#onError);
    socket.on('pong', WsConnection.#onPong);
    this.#inbox = this.#attach(requestUrl).catch((error: unknown) => {
      this.#sendError(error);
      void this.close(CLOSE_FOR_REFUSAL[toWireError(error).code] ?? WS_CLOSE.internalError, 'could not open session');
    });
  }

  async #attach(requestUrl: string): Promise<void> {
    const query = new URL(requestUrl, 'http://localhost').searchParams;
    const requested = query.get('sessionId');
    const afterSeq = parseSeq(query.get('lastSeq') ?? query.get('lastEventId'));
    const { registry, bus, sessions } = this.#shared;
    // Another key's session is answered exactly as a missing one.
    const session = requested === null ? await sessions.create(this.#caller) : await registry.find(requested, accessOf(this.#caller));
    if (!session) {
      this.#sendError(new ChatError('session_not_found'));
      void this.close(WS_CLOSE.sessionNotFound, 'session not found');
      return;
    }
    this.#sessionId = session.sessionId;
    this.#shared.logger.debug({ connectionId: this.#connectionId, sessionId: session.sessionId, resumeAfter: afterSeq }, 'websocket attached');
    const unsubscribe = await watchSession(bus, session.sessionId, afterSeq, this, () =>
      this.#sendText(JSON.stringify({ type: 'session', sessionId: session.sessionId })),
    );
    if (this.#closed) unsubscribe();
    else this.#unsubscribe = unsubscribe;
  }

  static #onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
    const connection = connectionOf.get(this);
    if (connection) connection.#received(data, isBinary);
  }

  static #onClose(this: WebSocket, code: number): void {
    const connection = connectionOf.get(this);
    if (connection) connection.#closedWith(code);
  }

  static #onPong(this: WebSocket): void {
    const connection = connectionOf.get(this);
    if (connection) connection.#awaitingPong = false;
  }

  static #onError(this: WebSocket, error: Error): void {
    const connection = connectionOf.get(this);
    if (connection) connection.#shared.logger.debug({ connectionId: connection.#connectionId, sessionId: connection.#sessionId, err: String(error) }, 'websocket error');
  }

  #received(data: RawData, isBinary: boolean): void {
    this.#inbox = this.#inbox.then(() => this.#handle(data, isBinary));
  }

  #closedWith(code: number): void {
    this.#shared.logger.debug({ connectionId: this.#connectionId, sessionId: this.#sessionId, code }, 'websocket closed');
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#shared.budget.forget(this);
    this.#shared.onClosed(this);
  }

  /**
   * A visit of the gateway's ping sweep. Once `dueMs` have passed since the
   * last ping, a peer that neither answered it nor made progress (sent bytes,
   * or took some of ours that were backed up) is dropped; any other is pinged.
   */
  heartbeat(now: number, dueMs: number): void {
    const socket = this.#socket;
    if (socket.readyState !== socket.OPEN) return;
    const since = now - this.#pingedAt;
    if (since < dueMs) {
      if (since < 0) this.#pingedAt = now; // the clock went back: the interval counts from now
      return;
    }
    const tcp = tcpCounters(socket);
    if (this.#awaitingPong) {
      const progress = tcp ? progressSince(this.#readAtPing, this.#completedAtPing, this.#pendingAtPing, tcp) : 'none';
      if (progress === 'none') {
        this.#shared.logger.debug({ connectionId: this.#connectionId, sessionId: this.#sessionId }, 'websocket peer neither answered a ping nor made progress; dropping it');
        socket.terminate();
        return;
      }
      if (progress === 'unsure' && tcp) {
        // Judged at the next visit, on what the socket does from now (the ping still awaits its pong).
        this.#noteCounters(tcp, now, tcp.pending);
        return;
      }
    }
    this.#awaitingPong = true;
    socket.ping();
    const after = tcpCounters(socket);
    if (after) this.#noteCounters(after, now, pendingToKeep(this.#pendingAtPing, after));
    else this.#pingedAt = now;
  }

  #noteCounters(tcp: TcpCounters, now: number, pending: number): void {
    this.#pingedAt = now;
    this.#readAtPing = tcp.read;
    this.#completedAtPing = tcp.completed;
    this.#pendingAtPing = pending;
  }

  bufferedBytes(): number {
    return this.#socket.bufferedAmount;
  }

  /** The node-wide budget chose this connection: it holds among the most unsent bytes. */
  shed(): void {
    this.#closeSlow('closing websocket consumer: node buffer budget exceeded');
  }

  /** Closes with `code`; the socket is dropped only if the close handshake does not finish within the grace. */
  close(code: number, reason: string): Promise<void> {
    return closeGracefully(this.#socket, code, reason, this.#shared.closeGraceMs);
  }

  #closeSlow(why: string): void {
    this.#shared.onSlowConsumer?.();
    this.#shared.logger.warn({ connectionId: this.#connectionId, sessionId: this.#sessionId, buffered: this.#socket.bufferedAmount }, why);
    void this.close(WS_CLOSE.tryAgainLater, 'slow consumer');
  }

  async #handle(data: RawData, isBinary: boolean): Promise<void> {
    const sessionId = this.#sessionId;
    if (this.#closed || sessionId === undefined) return;
    try {
      if (isBinary) throw new ChatError('bad_request', 'Binary frames are not supported; send text.');
      const frame = parseClientFrame(data.toString());
      const session = await this.#shared.registry.find(sessionId, accessOf(this.#caller));
      if (!session) throw new ChatError('session_not_found');
      if (frame.type === 'message') {
        // The `accepted` frame goes out (to every watcher) once the message is committed.
        await this.#shared.sessions.send(this.#caller, session, frame.text, frame.model !== undefined ? { model: frame.model } : undefined);
      } else {
        await session.cancel();
      }
    } catch (error) {
      this.#sendError(error);
    }
  }

  /** The connection's key was revoked: an `error` frame `unauthorized`, then close 4401. */
  revoke(): void {
    if (this.#closed) return;
    this.#sendError(new ChatError('unauthorized', 'This API key was revoked.'));
    void this.close(WS_CLOSE.unauthorized, 'key revoked');
  }

  /** A watched event of the session, as a frame (the watch's sink). */
  deliver(event: ChatEvent): void {
    const json = frameJson(event);
    if (json !== null) this.#sendText(json);
    if (event.type === 'session.stopped') {
      const [code, reason] = CLOSE_FOR_STOP[event.reason];
      void this.close(code, reason);
    }
  }

  #sendText(text: string): void {
    const socket = this.#socket;
    if (socket.readyState !== socket.OPEN) return;
    const flushFollows = corkWebSocketForThisTick(socket, this);
    socket.send(text);
    // Corked, the frame is still in the socket's buffer: it is measured once this turn's frames are out.
    if (!flushFollows) this.flushed();
  }

  /** After a write (or this turn's corked writes): too much unsent closes the connection; the node-wide budget hears the rest. */
  flushed(): void {
    if (this.#closed) return;
    const buffered = this.#socket.bufferedAmount;
    if (buffered > this.#shared.maxBufferedBytes) {
      this.#shared.budget.forget(this);
      this.#closeSlow('closing slow websocket consumer');
    } else this.#shared.budget.note(this, buffered);
  }

  #sendError(error: unknown): void {
    const wire = toWireError(error);
    this.#shared.onClientError?.(wire.code);
    if (isInternal(wire)) {
      this.#shared.logger.error({ connectionId: this.#connectionId, sessionId: this.#sessionId, err: String(error) }, 'websocket request failed');
    }
    this.#sendText(wsErrorFrame(wire));
  }
}
