import { connect } from 'node:net';
import { Agent, request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';

// POST /v1/chat/completions is served without Express (openAiCompletions.ts, jsonBody.ts):
// these hold it to what express.json() and the input rules do on every other JSON endpoint.

let running: RunningServer | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

const QUESTION = JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content: 'hi' }] });

/** A raw POST: exactly these headers and bytes. */
function post(url: string, path: string, body: Buffer | string, headers: Record<string, string | number>, agent?: Agent) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string; reusedSocket: boolean }>((resolve, reject) => {
    const request = httpRequest(`${url}${path}`, { method: 'POST', headers, ...(agent ? { agent } : {}) }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (part: string) => (text += part));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text, reusedSocket: request.reusedSocket }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

const errorOf = (text: string) => (JSON.parse(text) as { error: { code: string; message: string; type: string } }).error;

describe('POST /v1/chat/completions reads its body as every JSON endpoint does', () => {
  it('answers a JSON body, echoes a plain X-Request-Id and makes one for a client without', async () => {
    running = await startServer();
    const traced = await post(running.url, '/v1/chat/completions', QUESTION, { 'content-type': 'application/json; charset=UTF-8', 'x-request-id': 'trace-1' });
    expect(traced.status).toBe(200);
    expect(traced.headers['x-request-id']).toBe('trace-1');
    expect(JSON.parse(traced.text)).toMatchObject({ object: 'chat.completion', choices: [{ message: { content: expect.stringContaining('chunk 1: hi') } }] });
    const made = await post(running.url, '/v1/chat/completions', QUESTION, { 'content-type': 'application/json', 'x-request-id': 'not plain!' });
    expect(made.headers['x-request-id']).toMatch(/^[\w-]{12}$/);
  });

  it('decodes a gzip body', async () => {
    running = await startServer();
    const answer = await post(running.url, '/v1/chat/completions', gzipSync(QUESTION), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ object: 'chat.completion' });
  });

  it('refuses another Content-Type, charset or encoding, a non-object and broken JSON with 400 bad_request in OpenAI shape', async () => {
    running = await startServer();
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ 'content-type': 'text/plain' }, QUESTION, /^The body must be JSON, sent with Content-Type: application\/json\.$/],
      [{ 'content-type': 'application/json; charset=latin1' }, QUESTION, /charset "latin1" is not supported/],
      [{ 'content-type': 'application/json', 'content-encoding': 'compress' }, QUESTION, /Content-Encoding "compress" is not supported/],
      [{ 'content-type': 'application/json' }, '"just a string"', /^The body is not valid JSON\.$/],
      [{ 'content-type': 'application/json' }, '{"messages": [', /^The body is not valid JSON\.$/],
      [{ 'content-type': 'application/json', 'content-encoding': 'gzip' }, 'not gzip at all', /^The body could not be read\.$/],
    ];
    for (const [headers, body, message] of cases) {
      const answer = await post(running.url, '/v1/chat/completions', body, headers);
      expect(answer.status, JSON.stringify(headers)).toBe(400);
      expect(errorOf(answer.text)).toMatchObject({ code: 'bad_request', type: 'invalid_request_error', message: expect.stringMatching(message) });
    }
    expect(running.server.registry.activeCount).toBe(0);
  });

  it('holds the query string and the body to the input rules (NUL, lone surrogates, nesting)', async () => {
    running = await startServer();
    const nul = await post(running.url, '/v1/chat/completions?note=%00', QUESTION, { 'content-type': 'application/json' });
    expect(nul.status).toBe(400);
    expect(errorOf(nul.text).message).toMatch(/query string/);
    const surrogate = await post(running.url, '/v1/chat/completions', '{"model":"simulated","messages":[{"role":"user","content":"\\ud800"}]}', { 'content-type': 'application/json' });
    expect(surrogate.status).toBe(400);
    expect(errorOf(surrogate.text).message).toMatch(/the body/);
    const deep = await post(running.url, '/v1/chat/completions', `${'['.repeat(40)}${']'.repeat(40)}`, { 'content-type': 'application/json' });
    expect(deep.status).toBe(400);
    expect(errorOf(deep.text).message).toMatch(/nested deeper than 32/);
  });

  it('refuses a body past the limit with 413, declared or streamed without a length, and keeps serving', async () => {
    running = await startServer({ maxV1BodyBytes: 1024 });
    const declared = await post(running.url, '/v1/chat/completions', 'x'.repeat(2048), { 'content-type': 'application/json', 'content-length': 2048 });
    expect(declared.status).toBe(413);
    expect(errorOf(declared.text)).toMatchObject({ code: 'payload_too_large', type: 'invalid_request_error' });
    const streamed = await post(running.url, '/v1/chat/completions', `{"pad":"${'x'.repeat(4096)}"}`, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    expect(streamed.status).toBe(413);
    // The rest of a refused body is read off: the same keep-alive connection serves the next request.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const big = await post(running.url, '/v1/chat/completions', `{"pad":"${'x'.repeat(4 * 1024 * 1024)}"}`, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, agent);
      expect(big.status).toBe(413);
      const next = await post(running.url, '/v1/chat/completions', QUESTION, { 'content-type': 'application/json' }, agent);
      expect(next.status).toBe(200);
      expect(next.reusedSocket).toBe(true);
    } finally {
      agent.destroy();
    }
  });

  it('serves the path spelled with a trailing slash or in capitals through /v1 router alike', async () => {
    running = await startServer();
    for (const path of ['/v1/chat/completions/', '/V1/Chat/Completions']) {
      const answer = await post(running.url, path, QUESTION, { 'content-type': 'application/json' });
      expect(answer.status, path).toBe(200);
      expect(answer.headers['x-request-id']).toMatch(/^[\w.:-]+$/);
      expect(JSON.parse(answer.text)).toMatchObject({ object: 'chat.completion' });
    }
    const wrongMethod = await fetch(`${running.url}/v1/chat/completions`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toContain('POST');
  });

  it('takes nothing from a client that hangs up halfway through its body: no session, no slot', async () => {
    running = await startServer();
    const { port } = new URL(running.url);
    // The handler has the request (its headers read, its body being read) when the server emits it.
    const handed = new Promise<void>((resolve) => running!.server.http.once('request', () => resolve()));
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${QUESTION.length + 100}\r\n\r\n${QUESTION.slice(0, 20)}`);
    await handed;
    socket.destroy();
    // Until the server has seen the hang-up: then whatever it would have taken is taken.
    const connections = () => new Promise<number>((resolve, reject) => running!.server.http.getConnections((error, count) => (error ? reject(error) : resolve(count))));
    let open = await connections();
    for (const deadline = Date.now() + 2_000; open > 0 && Date.now() < deadline; open = await connections()) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(open).toBe(0);
    expect(running.server.registry.activeCount).toBe(0);
    expect(running.server.edge()).toMatchObject({ slots: 0, bufferedBytes: 0 });
    // And the next client is served as usual.
    expect((await post(running.url, '/v1/chat/completions', QUESTION, { 'content-type': 'application/json' })).status).toBe(200);
  });
});

describe('a streamed completion whose client leaves while its connection slot is being taken', () => {
  it('gives the slot back once it is taken (a Redis-backed limit answers after the hang-up)', async () => {
    running = await startServer();
    const { admission } = running.server;
    const admit = admission.admitConnection.bind(admission);
    let taken = () => {};
    const slotTaken = new Promise<void>((resolve) => (taken = resolve));
    let open = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    // The slot is taken at once; the answer comes only when the test opens the gate, as a slow limiter's would.
    admission.admitConnection = async (ip: string) => {
      const release = await admit(ip);
      taken();
      await gate;
      return release;
    };
    // The server's side of the response closes when the client is gone: then it has heard of it.
    const responseClosed = new Promise<void>((resolve) => running!.server.http.once('request', (_request, response) => response.once('close', () => resolve())));
    const { port } = new URL(running.url);
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const body = JSON.stringify({ model: 'simulated', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await slotTaken;
    expect(running.server.edge().slots).toBe(1);
    socket.destroy();
    await responseClosed;
    open();
    for (const deadline = Date.now() + 2_000; running.server.edge().slots > 0 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(running.server.edge().slots).toBe(0);
    expect(running.server.registry.activeCount).toBe(0);
  });
});
