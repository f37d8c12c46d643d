import type { Request, Response } from 'express';
import type { Sessions } from '../actors/sessions.ts';
import { ChatError } from '../domain/errors.ts';
import type { ChatEvent } from '../domain/events.ts';
import type { EventBus, Logger, Unsubscribe } from '../domain/ports.ts';
import { sseEvent } from './frames.ts';
import type { Admission } from './admission.ts';
import { requestLogger } from './requestContext.ts';
import { parseSeq } from './resumePosition.ts';
import { watchSession } from './watchSession.ts';

export interface SseOptions {
  registry: Sessions;
  bus: EventBus;
  logger: Logger;
  admission: Admission;
  /** Comment line sent this often so proxies keep the stream open (default 15 s). */
  heartbeatMs?: number;
  /** Reconnection delay suggested to EventSource clients (default 2 s). */
  retryMs?: number;
  /** A stream whose unsent bytes pass this is ended (default 1 MiB). */
  maxBufferedBytes?: number;
  onSlowConsumer?: () => void;
}

export interface SseStreams {
  /** The express handler for `GET /sse/:sessionId`. */
  handler: (request: Request, response: Response) => Promise<void>;
  readonly streamCount: number;
  /** Writes one raw SSE event to every open stream (the shutdown notice). */
  broadcast(text: string): void;
  /** Ends every stream (after a `session.stopped`-style farewell written by the caller) and the heartbeat. */
  close(): void;
}

/**
 * `GET /sse/:sessionId`: every event of one session as Server-Sent Events.
 * One shared timer writes the heartbeat to every stream, rather than a timer
 * per connection.
 */
export function createSseStreams(options: SseOptions): SseStreams {
  const { registry, bus, logger, admission } = options;
  const maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  const retryMs = options.retryMs ?? 2000;
  const open = new Set<Response>();
  const heartbeat = setInterval(() => {
    for (const response of open) response.write(':\n\n');
  }, options.heartbeatMs ?? 15_000);
  heartbeat.unref();

  const handler = async (request: Request, response: Response) => {
    const lastEventId = request.get('last-event-id');
    const query = request.query['lastEventId'];
    const afterSeq = parseSeq(lastEventId ?? (typeof query === 'string' ? query : undefined));
    const sessionId = String(request.params['sessionId']);
    const session = await registry.find(sessionId);
    if (!session) throw new ChatError('session_not_found');
    const release = await admission.admitConnection(request.socket.remoteAddress ?? 'unknown');

    // Sent once the subscription is live (across nodes it is asynchronous), so nothing after them is missed.
    const writeHeaders = () => {
      // writeHead, not express's set(): that would append "; charset=utf-8".
      response.writeHead(200, {
        'Content-Type': 'text/event-stream',
        'Cache-Control': 'no-cache',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      response.flushHeaders();
      response.write(`retry: ${retryMs}\n\n`);
      open.add(response);
    };

    let unsubscribe: Unsubscribe | undefined;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      release();
      open.delete(response);
      unsubscribe?.();
      response.end();
    };
    const deliver = (event: ChatEvent) => {
      if (ended) return;
      const text = sseEvent(event);
      if (text !== null) response.write(text);
      if (response.writableLength > maxBufferedBytes) {
        options.onSlowConsumer?.();
        requestLogger(response, logger).warn({ sessionId, buffered: response.writableLength }, 'closing slow SSE consumer');
        ended = true;
        release();
        open.delete(response);
        unsubscribe?.();
        response.destroy();
        return;
      }
      if (event.type === 'session.stopped') end();
    };
    request.on('close', end);
    let stop: Unsubscribe;
    try {
      stop = await watchSession(bus, session.sessionId, afterSeq, deliver, writeHeaders);
    } catch (error) {
      // Not attached (e.g. the cluster is unreachable): the error handler answers, the slot goes back.
      ended = true;
      release();
      open.delete(response);
      throw error;
    }
    if (ended) stop();
    else unsubscribe = stop;
  };

  return {
    handler,
    get streamCount() {
      return open.size;
    },
    broadcast(text) {
      for (const response of open) response.write(text);
    },
    close() {
      clearInterval(heartbeat);
      for (const response of [...open]) {
        open.delete(response);
        response.end();
      }
    },
  };
}
