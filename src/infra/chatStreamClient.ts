import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import https from 'node:https';
import { ChatError } from '../domain/errors.ts';
import type { CancelSignal } from '../domain/ports.ts';
import { parseRetryAfter } from './retryAfter.ts';

export interface ChatStreamClientOptions {
  /** e.g. https://api.openai.com/v1; `/chat/completions` is appended. */
  baseUrl: string;
  apiKey: string;
  /** Whole-request backstop (the real deadlines are the guard's). */
  timeoutMs: number;
}

export interface ChatStreamClient {
  /**
   * POSTs a streamed Chat Completions request and yields the SSE `data:`
   * payloads parsed (never `[DONE]`), all those of one network read in one
   * batch (a fast upstream's 20 deltas: one batch, not 20 steps of every
   * async generator stacked above). Every failure is a ChatError
   * `upstream_error`; once `signal` is aborted it just ends. A consumer that
   * stops early closes the connection.
   */
  stream(body: unknown, signal: CancelSignal): AsyncIterable<Record<string, unknown>[]>;
  /** Closes the idle keep-alive connections. */
  close(): void;
}

/** An error body is read for the status only (its text may hold secrets), and not past this. */
const MAX_ERROR_BODY = 64 * 1024;

/**
 * A lean streamed POST on `node:http(s)` with keep-alive, and our own SSE
 * line parser, in place of the `openai` SDK over undici `fetch`: in the
 * gateway bench's profile the SDK and fetch (web streams, header objects,
 * request cloning, a `ReadableStream.tee` per response) were ~25% of the
 * server's busy time for a 20-delta reply, more than everything else the
 * request did in llm-chat's own code.
 */
export function createChatStreamClient(options: ChatStreamClientOptions): ChatStreamClient {
  const url = new URL(`${options.baseUrl.replace(/\/+$/, '')}/chat/completions`);
  const secure = url.protocol === 'https:';
  // LIFO: the warmest connection first, so the pool stays as small as the concurrency needs.
  // An idle connection is closed after 4 s (the agent applies it to free sockets only), before
  // a Node server's default 5 s keep-alive closes it under a request about to reuse it.
  const pool = { keepAlive: true, scheduling: 'lifo', timeout: 4_000 } as const;
  const agent = secure ? new https.Agent(pool) : new http.Agent(pool);
  const send = secure ? https.request : http.request;
  const target = { protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || undefined, path: `${url.pathname}${url.search}` };
  const authorization = `Bearer ${options.apiKey}`;

  return {
    async *stream(body, signal) {
      if (signal.aborted) return;
      const payload = Buffer.from(JSON.stringify(body));
      const request = send({
        ...target,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization, 'content-length': payload.length },
      });
      // Errors after the response began surface on the response; this keeps a late one from going unheard.
      request.on('error', () => {});
      const abort = () => request.destroy();
      signal.addEventListener('abort', abort, { once: true });
      const backstop = setTimeout(() => request.destroy(new Error('request timed out')), options.timeoutMs);
      backstop.unref();
      let response: IncomingMessage | undefined;
      let finished = false;
      try {
        response = await new Promise<IncomingMessage>((resolve, reject) => {
          request.once('response', resolve);
          request.once('error', reject);
          request.end(payload);
        }).catch((error: unknown) => {
          throw new ChatError('upstream_error', "The model's server could not be reached.", { cause: error });
        });
        const status = response.statusCode ?? 0;
        if (status < 200 || status >= 300) throw await statusError(response, status);
        response.setEncoding('utf8');
        let buffer = '';
        let data: string[] = [];
        let event = '';
        let done = false;
        try {
          for await (const part of response as AsyncIterable<string>) {
            buffer += part;
            const batch: Record<string, unknown>[] = [];
            let from = 0;
            for (let end = buffer.indexOf('\n', from); end !== -1; end = buffer.indexOf('\n', from)) {
              const line = buffer.charCodeAt(end - 1) === 13 ? buffer.slice(from, end - 1) : buffer.slice(from, end);
              from = end + 1;
              if (line === '') {
                // A blank line ends an event.
                if (data.length > 0 && !done) {
                  const text = data.join('\n');
                  if (text.startsWith('[DONE]')) done = true;
                  else {
                    const parsed = parsePayload(text, event);
                    if (parsed instanceof ChatError) {
                      // What came before the error in this read is the reply's: it goes out first.
                      if (batch.length > 0) yield batch;
                      throw parsed;
                    }
                    batch.push(parsed);
                  }
                }
                data = [];
                event = '';
              } else if (line.startsWith('data:')) data.push(line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5));
              else if (line.startsWith('event:')) event = line.slice(6).trim();
              // `id:`, `retry:` and `:` comments mean nothing here.
            }
            buffer = from === 0 ? buffer : buffer.slice(from);
            if (batch.length > 0) yield batch;
          }
        } catch (error) {
          if (error instanceof ChatError) throw error;
          throw new ChatError('upstream_error', "The connection to the model's server failed.", { cause: error });
        }
        // (A last event without its blank line is the stream's end, as browsers take it.)
        if (data.length > 0 && !done && !data.join('\n').startsWith('[DONE]')) {
          const parsed = parsePayload(data.join('\n'), event);
          if (parsed instanceof ChatError) throw parsed;
          yield [parsed];
        }
        finished = true;
      } finally {
        clearTimeout(backstop);
        signal.removeEventListener('abort', abort);
        // Read to its end, the connection goes back to the pool; otherwise it is closed.
        if (!finished || (response && !response.complete)) request.destroy();
      }
    },
    close() {
      agent.destroy();
    },
  };
}

/** The payload, or the failure it stands for (returned: the caller first passes on what came before it). */
function parsePayload(text: string, event: string): Record<string, unknown> | ChatError {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return new ChatError('upstream_error', "The model's server sent a malformed stream.", { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return new ChatError('upstream_error', "The model's server sent a malformed stream.");
  }
  // An `error` payload (or event) mid-stream: what the SDK raises as an APIError.
  if (event === 'error' || (value as Record<string, unknown>)['error'] !== undefined) {
    return new ChatError('upstream_error', "The model's server reported an error in its stream.");
  }
  return value as Record<string, unknown>;
}

/** What the client may see of an upstream failure: its status and Retry-After, never its text. */
async function statusError(response: IncomingMessage, status: number): Promise<ChatError> {
  // Drained (bounded) so the connection can be reused.
  let read = 0;
  try {
    for await (const part of response as AsyncIterable<Buffer>) {
      read += part.length;
      if (read > MAX_ERROR_BODY) break;
    }
  } catch {
    // The status is what matters.
  }
  const retryAfterMs = parseRetryAfter(headersOf(response.headers));
  return new ChatError('upstream_error', `The model's server answered with HTTP ${status}.`, {
    upstreamStatus: status,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

function headersOf(incoming: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const name of ['retry-after', 'retry-after-ms']) {
    const value = incoming[name];
    if (typeof value === 'string') headers.set(name, value);
  }
  return headers;
}
