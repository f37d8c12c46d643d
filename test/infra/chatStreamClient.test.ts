import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createChatStreamClient } from '../../src/infra/chatStreamClient.ts';
import type { ChatStreamClient } from '../../src/infra/chatStreamClient.ts';
import { ChatError } from '../../src/domain/errors.ts';

let server: Server | undefined;
let client: ChatStreamClient | undefined;
afterEach(async () => {
  client?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});

/** A raw upstream whose answer the test writes byte by byte. */
async function upstream(answer: (response: ServerResponse) => void | Promise<void>): Promise<ChatStreamClient> {
  server = createServer((request, response) => {
    request.resume();
    request.on('end', () => void answer(response));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  client = createChatStreamClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/`, apiKey: 'k', timeoutMs: 5_000 });
  return client;
}

async function collect(stream: ChatStreamClient) {
  const payloads: Record<string, unknown>[] = [];
  try {
    for await (const batch of stream.stream({ stream: true }, new AbortController().signal)) payloads.push(...batch);
    return { payloads, error: undefined };
  } catch (error) {
    return { payloads, error: error as ChatError };
  }
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 10));

describe('the streamed Chat Completions client', () => {
  it('parses CRLF lines, comments, multi-line data and frames split across reads, and stops at [DONE]', async () => {
    const stream = await upstream(async (response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(': keep-alive\r\n\r\ndata: {"a":1}\r\n\r\nda');
      await tick();
      response.write('ta: {"b":\ndata: 2}\n\n');
      await tick();
      response.end('data: [DONE]\n\ndata: {"after":true}\n\n');
    });
    const { payloads, error } = await collect(stream);
    expect(error).toBeUndefined();
    expect(payloads).toEqual([{ a: 1 }, { b: 2 }]);
  });

  it('an error payload or event fails the stream after what came before it, and its text is not shown', async () => {
    const stream = await upstream((response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.end('data: {"a":1}\n\nevent: error\ndata: {"message":"secret"}\n\n');
    });
    const { payloads, error } = await collect(stream);
    expect(payloads).toEqual([{ a: 1 }]);
    expect(error).toBeInstanceOf(ChatError);
    expect(error?.message).toBe("The model's server reported an error in its stream.");
  });

  it('a status is upstream_error with that status and the Retry-After it sent', async () => {
    const stream = await upstream((response) => {
      response.writeHead(429, { 'content-type': 'application/json', 'retry-after-ms': '1500' }).end('{"error":{"message":"secret"}}');
    });
    const { error } = await collect(stream);
    expect(error).toMatchObject({ code: 'upstream_error', upstreamStatus: 429, retryAfterMs: 1500 });
    expect(error?.message).not.toContain('secret');
  });

  it('reuses its connection for the next request', async () => {
    const sockets = new Set<unknown>();
    const stream = await upstream((response) => {
      sockets.add(response.socket);
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.end('data: {"a":1}\n\ndata: [DONE]\n\n');
    });
    await collect(stream);
    await collect(stream);
    expect(sockets.size).toBe(1);
  });
});
