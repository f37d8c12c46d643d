import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What the fake does with one request. Streams speak the real OpenAI Chat
 * Completions SSE wire format: data-only frames, a role delta first, content
 * deltas, a finish_reason, a usage chunk when asked for, `data: [DONE]`.
 */
export type Behaviour =
  | {
      kind: 'stream';
      pieces: string[];
      /** Between pieces (default 0). */
      intervalMs?: number;
      /** Before the response headers (a slow first byte). */
      firstByteDelayMs?: number;
      usage?: { prompt_tokens: number; completion_tokens: number };
      /** Leave out the finish_reason chunk and [DONE] (a stream that just ends). */
      truncated?: boolean;
      /** Tool calls streamed after the pieces, each as fragments: a first delta with id and name, then its arguments piece by piece. */
      toolCalls?: { id: string; name: string; arguments: string[] }[];
      /** Interleave the tool calls' fragments (parallel calls streamed together, as OpenAI does for several). */
      interleave?: boolean;
      /** The finish_reason sent (default `tool_calls` with tool calls, else `stop`). */
      finishReason?: string;
    }
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> }
  /** HTTP 200, some pieces, then a `data: {"error":…}` payload and [DONE]. */
  | { kind: 'errorPayload'; pieces: string[]; error: { message: string; type: string } }
  /** Some pieces, then nothing more, connection kept open. */
  | { kind: 'stall'; pieces: string[] }
  /** Some pieces, then the socket is destroyed mid-stream. */
  | { kind: 'drop'; pieces: string[] };

export interface UpstreamRequest {
  body: Record<string, unknown> & { messages?: ({ role: string; content: unknown } & Record<string, unknown>)[]; stream?: boolean };
  /** The request's path (`/v1/chat/completions`). */
  url: string;
  headers: IncomingMessage['headers'];
  receivedAt: number;
  /** Set when the connection closed before the fake finished its answer (the client hung up). */
  abortedAt: number | undefined;
  /** Resolves with the time the client closed the connection early. */
  aborted: Promise<number>;
}

export interface FakeUpstream {
  /** Base URL to give the SDK, ending in /v1. */
  readonly baseUrl: string;
  readonly requests: UpstreamRequest[];
  /** Queues behaviours for the next requests, in order; when none is queued: a three-piece stream. */
  enqueue(...behaviours: Behaviour[]): void;
  /** Resolves when `count` requests have arrived. */
  waitForRequests(count: number, timeoutMs?: number): Promise<UpstreamRequest[]>;
  close(): Promise<void>;
}

const DEFAULT: Behaviour = { kind: 'stream', pieces: ['Hello', ', ', 'world'], usage: { prompt_tokens: 7, completion_tokens: 3 } };

function chunk(delta: Record<string, unknown>, finishReason: string | null = null, logprobs: unknown = null): string {
  const body = {
    id: 'chatcmpl-fake',
    object: 'chat.completion.chunk',
    created: 1_700_000_000,
    model: 'fake-model',
    choices: [{ index: 0, delta, logprobs, finish_reason: finishReason }],
  };
  return `data: ${JSON.stringify(body)}\n\n`;
}

/** A made-up log probability for a piece (when the request asked for logprobs). */
export function fakeLogprob(piece: string) {
  return { token: piece, logprob: -piece.length / 10, bytes: [...Buffer.from(piece)], top_logprobs: [] };
}

/** The `delta.tool_calls` fragments of some calls, one call after the other or interleaved. */
function toolCallDeltas(calls: { id: string; name: string; arguments: string[] }[], interleave: boolean) {
  const perCall = calls.map((call, index) => [
    { index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } },
    ...call.arguments.map((part) => ({ index, function: { arguments: part } })),
  ]);
  if (!interleave) return perCall.flat();
  const mixed = [];
  for (let step = 0; perCall.some((list) => step < list.length); step += 1) for (const list of perCall) if (step < list.length) mixed.push(list[step]!);
  return mixed;
}

const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function startFakeUpstream(): Promise<FakeUpstream> {
  const queue: Behaviour[] = [];
  const requests: UpstreamRequest[] = [];
  const waiters: (() => void)[] = [];

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    let raw = '';
    for await (const part of request) raw += String(part);
    const body = (raw ? JSON.parse(raw) : {}) as UpstreamRequest['body'];
    let markAborted: (at: number) => void = () => {};
    const recorded: UpstreamRequest = {
      body,
      url: request.url ?? '',
      headers: request.headers,
      receivedAt: Date.now(),
      abortedAt: undefined,
      aborted: new Promise((resolve) => (markAborted = resolve)),
    };
    response.on('close', () => {
      if (response.writableFinished) return;
      recorded.abortedAt = Date.now();
      markAborted(recorded.abortedAt);
    });
    requests.push(recorded);
    for (const wake of waiters.splice(0)) wake();
    if (request.url !== '/v1/chat/completions') {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"no such route"}}');
      return;
    }
    const behaviour = queue.shift() ?? DEFAULT;
    const open = () => response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const live = () => !response.destroyed && !response.writableEnded;
    const withLogprobs = body['logprobs'] === true;
    const writePieces = async (pieces: string[], intervalMs = 0) => {
      response.write(chunk({ role: 'assistant', content: '' }));
      for (const piece of pieces) {
        if (intervalMs > 0) await wait(intervalMs);
        if (!live()) return;
        response.write(chunk({ content: piece }, null, withLogprobs ? { content: [fakeLogprob(piece)], refusal: null } : null));
      }
    };
    switch (behaviour.kind) {
      case 'status':
        response.writeHead(behaviour.status, { 'content-type': 'application/json', ...behaviour.headers });
        response.end(JSON.stringify(behaviour.body ?? { error: { message: `status ${behaviour.status}`, type: 'server_error' } }));
        return;
      case 'stream': {
        if (behaviour.firstByteDelayMs) await wait(behaviour.firstByteDelayMs);
        if (!live()) return;
        open();
        await writePieces(behaviour.pieces, behaviour.intervalMs);
        if (!live()) return;
        for (const delta of toolCallDeltas(behaviour.toolCalls ?? [], behaviour.interleave ?? false)) {
          if (behaviour.intervalMs) await wait(behaviour.intervalMs);
          if (!live()) return;
          response.write(chunk({ tool_calls: [delta] }));
        }
        if (behaviour.truncated) {
          response.end();
          return;
        }
        response.write(chunk({}, behaviour.finishReason ?? (behaviour.toolCalls?.length ? 'tool_calls' : 'stop')));
        const options = body['stream_options'] as { include_usage?: boolean } | undefined;
        if (options?.include_usage && behaviour.usage) {
          const usage = { ...behaviour.usage, total_tokens: behaviour.usage.prompt_tokens + behaviour.usage.completion_tokens };
          response.write(`data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'fake-model', choices: [], usage })}\n\n`);
        }
        response.end('data: [DONE]\n\n');
        return;
      }
      case 'errorPayload':
        open();
        await writePieces(behaviour.pieces);
        response.write(`data: ${JSON.stringify({ error: behaviour.error })}\n\n`);
        response.end('data: [DONE]\n\n');
        return;
      case 'stall':
        open();
        await writePieces(behaviour.pieces);
        return; // and never another byte
      case 'drop':
        open();
        await writePieces(behaviour.pieces);
        await wait(5);
        response.socket?.destroy();
        return;
    }
  };

  const server = createServer((request, response) => {
    handle(request, response).catch(() => response.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    enqueue(...behaviours) {
      queue.push(...behaviours);
    },
    async waitForRequests(count, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (requests.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out waiting for ${count} upstream requests; got ${requests.length}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return requests.slice(0, count);
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
