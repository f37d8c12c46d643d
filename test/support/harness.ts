import { request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import WebSocket from 'ws';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { createChatServer } from '../../src/server.ts';
import type { ChatServer, ChatServerOptions } from '../../src/server.ts';

export interface RunningServer {
  server: ChatServer;
  url: string;
  wsUrl: string;
  close(): Promise<void>;
}

/** A real server on a free loopback port; without API keys (`auth: { mode: 'none' }`) unless the test asks for them. */
export async function startServer(options: ChatServerOptions = {}): Promise<RunningServer> {
  const server = createChatServer({ simIntervalMs: 0, logger: silentLogger, auth: { mode: 'none' }, ...options });
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/ws`, close: () => server.close() };
}

export type Json = Record<string, unknown> & { type?: string };

/** Wakes waiters when something arrives; `until` polls a probe on every wake, up to a deadline. */
class Arrivals {
  #waiters: (() => void)[] = [];

  notify(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  async until<T>(probe: () => T | undefined | false, timeoutMs: number, describe: () => string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = probe();
      if (found !== undefined && found !== false) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${describe()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** A real `ws` client that records every frame and lets a test wait for one. */
export class WsClient {
  readonly socket: WebSocket;
  readonly frames: Json[] = [];
  readonly raw: string[] = [];
  closeEvent: { code: number; reason: string } | undefined;
  #arrivals = new Arrivals();

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data) => {
      const text = data.toString();
      this.raw.push(text);
      this.frames.push(JSON.parse(text) as Json);
      this.#arrivals.notify();
    });
    socket.on('close', (code, reason) => {
      this.closeEvent = { code, reason: reason.toString() };
      this.#arrivals.notify();
    });
  }

  static async open(url: string, options?: WebSocket.ClientOptions): Promise<WsClient> {
    const socket = new WebSocket(url, options);
    const client = new WsClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return client;
  }

  /** Opens a new session and waits for the `session` frame; returns the client and its id. */
  static async session(wsUrl: string, options?: WebSocket.ClientOptions): Promise<{ client: WsClient; sessionId: string }> {
    const client = await WsClient.open(wsUrl, options);
    const frame = await client.waitFor((f) => f.type === 'session');
    return { client, sessionId: String(frame['sessionId']) };
  }

  send(data: string | Buffer): void {
    this.socket.send(data);
  }

  async waitFor(predicate: (frame: Json) => boolean, timeoutMs = 5000): Promise<Json> {
    return this.#until(() => this.frames.find(predicate), timeoutMs, 'frame');
  }

  async waitForCount(predicate: (frame: Json) => boolean, count: number, timeoutMs = 5000): Promise<Json[]> {
    return this.#until(
      () => {
        const matching = this.frames.filter(predicate);
        return matching.length >= count ? matching : undefined;
      },
      timeoutMs,
      `${count} frames`,
    );
  }

  async closed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    return this.#until(() => this.closeEvent, timeoutMs, 'close');
  }

  #until<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return this.#arrivals.until(probe, timeoutMs, () => {
      const recent = this.raw.slice(-3).map((text) => (text.length > 300 ? `${text.slice(0, 300)}…` : text));
      return `${what}; ${this.frames.length} frames, last: ${recent.join(' | ')}`;
    });
  }

  close(): void {
    this.socket.close();
  }
}

export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/**
 * A raw SSE reader over node:http: keeps the exact bytes (to test framing)
 * and parses them as the EventSource spec does.
 */
export class SseClient {
  status = 0;
  headers: IncomingHttpHeaders = {};
  bytes = '';
  ended = false;
  #abort = new AbortController();
  #arrivals = new Arrivals();

  static open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const client = new SseClient();
    return new Promise((resolve, reject) => {
      const request = httpRequest(url, { headers: { accept: 'text/event-stream', ...headers }, signal: client.#abort.signal }, (response) => {
        client.status = response.statusCode ?? 0;
        client.headers = response.headers;
        response.setEncoding('utf8');
        response.on('data', (text: string) => {
          client.bytes += text;
          client.#arrivals.notify();
        });
        response.on('end', () => {
          client.ended = true;
          client.#arrivals.notify();
        });
        response.on('error', () => {
          client.ended = true;
          client.#arrivals.notify();
        });
        resolve(client);
      });
      request.on('error', (error) => (client.status === 0 ? reject(error) : undefined));
      request.end();
    });
  }

  /** Events as the EventSource algorithm dispatches them (comments and retry dropped). */
  get messages(): SseMessage[] {
    const messages: SseMessage[] = [];
    for (const block of this.bytes.split('\n\n').slice(0, -1)) {
      const message: SseMessage = { data: '' };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':') || line === '') continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') data.push(value);
        else if (field === 'id') message.id = value;
        else if (field === 'event') message.event = value;
      }
      if (data.length === 0) continue;
      message.data = data.join('\n');
      messages.push(message);
    }
    return messages;
  }

  get chunks(): Json[] {
    return this.messages.filter((message) => message.event === undefined).map((message) => JSON.parse(message.data) as Json);
  }

  waitFor<T>(probe: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
    return this.#arrivals.until(probe, timeoutMs, () => `SSE data; bytes so far (tail): ${JSON.stringify(this.bytes.slice(-500))}`);
  }

  close(): void {
    this.#abort.abort();
  }
}

/** fetch with a JSON body; returns status and parsed JSON (or text). */
export async function api(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Json; headers: Headers }> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: Json = {};
  if (text) {
    try {
      parsed = JSON.parse(text) as Json;
    } catch {
      parsed = { text };
    }
  }
  return { status: response.status, body: parsed, headers: response.headers };
}
