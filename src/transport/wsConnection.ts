import type { RawData, WebSocket } from 'ws';
import type { Sessions } from '../actors/sessions.ts';
import { ChatError } from '../domain/errors.ts';
import type { ChatEvent, StopReason } from '../domain/events.ts';
import type { EventBus, Logger, Unsubscribe } from '../domain/ports.ts';
import type { Admission } from './admission.ts';
import { parseClientFrame } from './clientFrames.ts';
import { frameJson } from './frames.ts';
import { newRequestId } from './requestContext.ts';
import { parseSeq } from './resumePosition.ts';
import { watchSession } from './watchSession.ts';
import { WS_CLOSE, isInternal, toWireError, wsErrorFrame } from './wireErrors.ts';

/** What every connection of one gateway shares. */
export interface WsShared {
  registry: Sessions;
  bus: EventBus;
  logger: Logger;
  admission: Admission;
  maxBufferedBytes: number;
  onSlowConsumer?: () => void;
  /** Told of every error frame sent to a client (metrics). */
  onClientError?: (code: string) => void;
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
};

/**
 * One WebSocket client. A class, not a bag of closures: 19,000 of them share
 * one prototype, and memory per idle connection is a target we measure.
 */
export class WsConnection {
  readonly #shared: WsShared;
  readonly #socket: WebSocket;
  readonly #release: () => void;
  // Passed in each line's fields rather than as a child logger: a pino child
  // costs about 2 KB, a lot next to a connection's own.
  readonly #connectionId = newRequestId();
  #sessionId: string | undefined;
  #unsubscribe: Unsubscribe | undefined;
  #closed = false;
  // Client frames are handled one after another, in arrival order, even while attaching.
  #inbox: Promise<void>;

  constructor(shared: WsShared, socket: WebSocket, requestUrl: string, release: () => void) {
    this.#shared = shared;
    this.#socket = socket;
    this.#release = release;
    socket.on('message', this.#onMessage);
    socket.on('close', this.#onClose);
    socket.on('error', this.#onError);
    this.#inbox = this.#attach(requestUrl).catch((error: unknown) => {
      this.#sendError(error);
      this.#socket.close(CLOSE_FOR_REFUSAL[toWireError(error).code] ?? WS_CLOSE.internalError, 'could not open session');
    });
  }

  async #attach(requestUrl: string): Promise<void> {
    const query = new URL(requestUrl, 'http://localhost').searchParams;
    const requested = query.get('sessionId');
    const afterSeq = parseSeq(query.get('lastSeq') ?? query.get('lastEventId'));
    const { registry, bus } = this.#shared;
    const session = requested === null ? await registry.create() : await registry.find(requested);
    if (!session) {
      this.#sendError(new ChatError('session_not_found'));
      this.#socket.close(WS_CLOSE.sessionNotFound, 'session not found');
      return;
    }
    this.#sessionId = session.sessionId;
    this.#shared.logger.debug({ connectionId: this.#connectionId, sessionId: session.sessionId, resumeAfter: afterSeq }, 'websocket attached');
    const unsubscribe = await watchSession(bus, session.sessionId, afterSeq, this.#deliver, () =>
      this.#sendText(JSON.stringify({ type: 'session', sessionId: session.sessionId })),
    );
    if (this.#closed) unsubscribe();
    else this.#unsubscribe = unsubscribe;
  }

  #onMessage = (data: RawData, isBinary: boolean): void => {
    this.#inbox = this.#inbox.then(() => this.#handle(data, isBinary));
  };

  #onClose = (code: number): void => {
    this.#shared.logger.debug({ connectionId: this.#connectionId, sessionId: this.#sessionId, code }, 'websocket closed');
    this.#closed = true;
    this.#release();
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  };

  #onError = (error: Error): void => {
    this.#shared.logger.debug({ connectionId: this.#connectionId, sessionId: this.#sessionId, err: String(error) }, 'websocket error');
  };

  async #handle(data: RawData, isBinary: boolean): Promise<void> {
    const sessionId = this.#sessionId;
    if (this.#closed || sessionId === undefined) return;
    try {
      if (isBinary) throw new ChatError('bad_request', 'Binary frames are not supported; send text.');
      const frame = parseClientFrame(data.toString());
      const session = await this.#shared.registry.find(sessionId);
      if (!session) throw new ChatError('session_not_found');
      if (frame.type === 'message') {
        await this.#shared.admission.admitMessage(sessionId);
        await session.send(frame.text);
      } else {
        await session.cancel();
      }
    } catch (error) {
      this.#sendError(error);
    }
  }

  #deliver = (event: ChatEvent): void => {
    const json = frameJson(event);
    if (json !== null) this.#sendText(json);
    if (event.type === 'session.stopped') {
      const [code, reason] = CLOSE_FOR_STOP[event.reason];
      this.#socket.close(code, reason);
    }
  };

  #sendText(text: string): void {
    const socket = this.#socket;
    if (socket.readyState !== socket.OPEN) return;
    socket.send(text);
    if (socket.bufferedAmount > this.#shared.maxBufferedBytes) {
      this.#shared.onSlowConsumer?.();
      this.#shared.logger.warn(
        { connectionId: this.#connectionId, sessionId: this.#sessionId, buffered: socket.bufferedAmount },
        'closing slow websocket consumer',
      );
      socket.close(WS_CLOSE.tryAgainLater, 'slow consumer');
      socket.terminate();
    }
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
