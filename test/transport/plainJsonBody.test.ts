import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';

let running: RunningServer | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

const CHAT = JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content: 'hi' }] });

async function post(headers: Record<string, string>, body: string | Uint8Array) {
  const response = await fetch(`${running!.url}/v1/chat/completions`, { method: 'POST', headers, body });
  return { status: response.status, body: (await response.json()) as { error?: { code: string; message: string }; object?: string } };
}

/** The lean /v1 body reader answers as express.json did, on its own path and on the ones it hands back. */
describe('/v1 request bodies', () => {
  it('reads plain UTF-8 JSON, with a charset or a BOM', async () => {
    running = await startServer();
    expect((await post({ 'content-type': 'application/json' }, CHAT)).body.object).toBe('chat.completion');
    expect((await post({ 'content-type': 'Application/JSON; charset=UTF-8' }, CHAT)).body.object).toBe('chat.completion');
    expect((await post({ 'content-type': 'application/json' }, `\uFEFF${CHAT}`)).body.object).toBe('chat.completion');
  });

  it('still reads a gzip-compressed body (handed to express.json)', async () => {
    running = await startServer();
    const reply = await post({ 'content-type': 'application/json', 'content-encoding': 'gzip' }, gzipSync(CHAT));
    expect(reply.body.object).toBe('chat.completion');
  });

  it('answers 400 for malformed JSON, a non-object body and an empty one; 413 over the limit', async () => {
    running = await startServer({ maxV1BodyBytes: 1024 });
    const json = { 'content-type': 'application/json' };
    for (const body of ['{not json', '"a string"', '  42']) {
      expect(await post(json, body)).toEqual({ status: 400, body: { error: expect.objectContaining({ code: 'bad_request', message: 'The body is not valid JSON.' }) } });
    }
    // An empty body is `{}` (body-parser's rule): then the schema names what is missing.
    const empty = await post({ ...json, 'content-length': '0' }, '');
    expect(empty.status).toBe(400);
    expect(empty.body.error?.message).toMatch(/^Invalid chat completion request at messages/);
    const big = JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content: 'x'.repeat(2048) }] });
    expect(await post(json, big)).toEqual({ status: 413, body: { error: expect.objectContaining({ code: 'payload_too_large' }) } });
    // Over the limit without a Content-Length (chunked): the same 413 once it is read off.
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const response = await fetch(`${running.url}/v1/chat/completions`, { method: 'POST', headers: json, body: chunked, duplex: 'half' } as RequestInit);
    expect(response.status).toBe(413);
  });

  it('says a body of another type must be JSON', async () => {
    running = await startServer();
    const reply = await post({ 'content-type': 'text/plain' }, CHAT);
    expect(reply.status).toBe(400);
    expect(reply.body.error?.message).toBe('The body must be JSON, sent with Content-Type: application/json.');
  });
});
