import type { Request, Response } from 'express';
import type { Sessions } from '../actors/sessions.ts';
import { ChatError } from '../domain/errors.ts';
import type { ChatEvent } from '../domain/events.ts';
import type { EventBus, Logger, Unsubscribe } from '../domain/ports.ts';
import { sseEvent } from './frames.ts';
import type { Admission } from './admission.ts';
import type { BufferBudget, BufferedStream } from './bufferBudget.ts';
import { requestLogger } from './requestContext.ts';
import { parseSeq } from './resumePosition.ts';
import { watchSession } from './watchSession.ts';
import { clientAddressOf } from './clientAddress.ts';

export interface SseOptions {
  registry: Sessions;
  bus: EventBus;
  logger: Logger;
  admission: Admission;
  /** The node-wide budget of unsent bytes (shared with WebSocket). */
  budget: BufferBudget;
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
  const { registry, bus, logger, admission, budget } = options;
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

    // The client may hang up during any await below (a slow store load):
    // listen first, and let one function give back whatever was taken so far.
    let ended = false;
    let release: (() => void) | undefined;
    let unsubscribe: Unsubscribe | undefined;
    const stream: BufferedStream = {
      bufferedBytes: () => response.writableLength,
      shed: () => cutOff('closing slow SSE consumer: node buffer budget exceeded'),
    };
    const finish = () => {
      if (ended) return false;
      ended = true;
      release?.();
      open.delete(response);
      unsubscribe?.();
      budget.forget(stream);
      return true;
    };
    const end = () => {
      if (finish() && !response.writableEnded) response.end();
    };
    const cutOff = (why: string) => {
      const buffered = response.writableLength;
      if (!finish()) return;
      options.onSlowConsumer?.();
      requestLogger(response, logger).warn({ sessionId, buffered }, why);
      response.destroy();
    };
    const gone = () => ended || request.socket.destroyed;
    response.on('close', end);

    try {
      release = await admission.admitConnection(clientAddressOf(request));
      if (gone()) return end();
      const session = await registry.find(sessionId);
      if (gone()) return end();
      if (!session) throw new ChatError('session_not_found');

      // Sent once the subscription is live (across nodes it is asynchronous), so nothing after them is missed;
      // a failure before (the cluster unreachable) is still a plain HTTP error.
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
      const deliver = (event: ChatEvent) => {
        if (ended) return;
        const text = sseEvent(event);
        if (text !== null) response.write(text);
        const buffered = response.writableLength;
        if (buffered > maxBufferedBytes) return cutOff('closing slow SSE consumer');
        budget.note(stream, buffered);
        if (event.type === 'session.stopped') end();
      };
      const stop = await watchSession(bus, session.sessionId, afterSeq, { deliver }, writeHeaders);
      if (gone()) {
        stop();
        end();
      } else unsubscribe = stop;
    } catch (error) {
      // Nothing of this stream survives a failure; the error handler answers (or ends a started stream).
      finish();
      throw error;
    }
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
