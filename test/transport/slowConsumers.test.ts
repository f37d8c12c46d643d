import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';

let running: RunningServer | undefined;
const clients: WsClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await running?.close();
  running = undefined;
});

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const paused: IncomingMessage[] = [];
afterEach(() => {
  for (const response of paused.splice(0)) response.destroy();
});

/** An SSE reader that reads the headers and then nothing. */
function pausedSse(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, (response) => {
      response.pause();
      paused.push(response);
      resolve(response);
    });
    request.on('error', reject);
    request.end();
  });
}

async function stalledSession(wsUrl: string) {
  const opened = await WsClient.session(wsUrl);
  clients.push(opened.client);
  return opened;
}

describe('slow consumers see 1013', () => {
  it('a real client that stops reading is closed with 1013 (the close frame reaches it, not 1006) once it reads again within the grace', async () => {
    let slow = 0;
    // A grace longer than the default 2 s, so a loaded machine still reads the backlog in time.
    running = await startServer({ simChunks: 200, maxBufferedBytes: 256 * 1024, messagesPerMinute: 0, wsCloseGraceMs: 5000, onSlowConsumer: () => (slow += 1) });
    const { client } = await stalledSession(running.wsUrl);
    client.socket.pause(); // the real ws client stops reading
    client.send('x'.repeat(30_000)); // 200 chunks × 30 kB ≈ 6 MB
    const deadline = Date.now() + 10_000;
    while (slow === 0 && Date.now() < deadline) await wait(10);
    expect(slow).toBe(1);
    client.socket.resume();
    const closed = await client.closed(5000);
    expect(closed).toEqual({ code: 1013, reason: 'slow consumer' });
    // What was sent before the close arrives in order; nothing after it.
    const seqs = client.frames.filter((frame) => frame.type === 'chunk').map((frame) => Number(frame['seq']));
    expect(seqs.length).toBeGreaterThan(0);
    expect(seqs).toEqual(seqs.map((_, index) => index + 1));
    expect(seqs.length).toBeLessThan(200);
  });
});

describe('the node-wide buffered budget', () => {
  it('closes the connection holding the most (1013), not the one whose write crossed the budget; the other is served in full', async () => {
    let slow = 0;
    running = await startServer({
      simChunks: 700,
      messagesPerMinute: 0,
      maxFrameBytes: 64 * 1024,
      maxBufferedBytes: 64 * 1024 * 1024, // the per-connection cap never triggers here
      maxBufferedTotalBytes: 48 * 1024 * 1024,
      wsCloseGraceMs: 15_000,
      onSlowConsumer: () => (slow += 1),
    });
    const { server } = running;
    const heavy = await stalledSession(running.wsUrl);
    const light = await stalledSession(running.wsUrl);
    heavy.client.socket.pause();
    light.client.socket.pause();
    // Heavy: 700 × 60 kB ≈ 42 MB; the kernel takes a few MB, the rest waits in the server, under the 48 MiB budget.
    heavy.client.send('h'.repeat(60_000));
    const status = (sessionId: string) => server.registry.peek(sessionId)?.status();
    const streamed = async (sessionId: string) => {
      const deadline = Date.now() + 20_000;
      while (status(sessionId) !== 'generating' && Date.now() < deadline) await wait(5);
      while (status(sessionId) !== 'idle' && Date.now() < deadline) await wait(20);
    };
    await streamed(heavy.sessionId);
    expect(slow).toBe(0);
    const heldByHeavy = server.edge().bufferedBytes;
    expect(heldByHeavy).toBeGreaterThan(24 * 1024 * 1024);
    // Light: 700 × 30 kB ≈ 21 MB; somewhere on the way the total passes 48 MiB, while heavy still holds more.
    light.client.send('l'.repeat(30_000));
    await streamed(light.sessionId);
    expect(slow).toBe(1);
    expect(server.edge().bufferedBytes).toBeLessThan(heldByHeavy);
    heavy.client.socket.resume();
    light.client.socket.resume();
    expect((await heavy.client.closed(15_000)).code).toBe(1013);
    const last = await light.client.waitFor((frame) => frame['is_last'] === true, 15_000);
    expect(light.client.frames.filter((frame) => frame.type === 'chunk')).toHaveLength(700);
    expect(last['seq']).toBe(700);
    expect(light.client.closeEvent).toBeUndefined();
  }, 60_000);

  it('counts SSE streams too: a stalled SSE reader holding the most is cut off, a lighter WebSocket goes on', async () => {
    let slow: string[] = [];
    running = await startServer({
      simChunks: 700,
      messagesPerMinute: 0,
      maxBufferedBytes: 64 * 1024 * 1024,
      maxBufferedTotalBytes: 48 * 1024 * 1024,
      wsCloseGraceMs: 15_000,
      onSlowConsumer: (transport) => (slow = [...slow, transport]),
    });
    const { server } = running;
    const heavy = await stalledSession(running.wsUrl); // its own socket keeps reading; an SSE reader on the session stalls
    const sse = await pausedSse(`${running.url}/sse/${heavy.sessionId}`);
    let ended = false;
    sse.on('close', () => (ended = true));
    const light = await stalledSession(running.wsUrl);
    light.client.socket.pause();
    const status = (sessionId: string) => server.registry.peek(sessionId)?.status();
    const streamed = async (sessionId: string) => {
      const deadline = Date.now() + 20_000;
      while (status(sessionId) !== 'generating' && Date.now() < deadline) await wait(5);
      while (status(sessionId) !== 'idle' && Date.now() < deadline) await wait(20);
    };
    heavy.client.send('h'.repeat(60_000));
    await streamed(heavy.sessionId);
    expect(slow).toEqual([]);
    light.client.send('l'.repeat(30_000));
    await streamed(light.sessionId);
    expect(slow).toEqual(['sse']);
    sse.resume();
    light.client.socket.resume();
    await light.client.waitFor((frame) => frame['is_last'] === true, 15_000);
    expect(light.client.frames.filter((frame) => frame.type === 'chunk')).toHaveLength(700);
    const deadline = Date.now() + 5000;
    while (!ended && Date.now() < deadline) await wait(20);
    expect(ended).toBe(true);
  }, 60_000);
});

describe('the node-wide buffered budget over /v1 streams', () => {
  it('cuts off a streamed /v1 reply whose reader never reads, under its own cap but past the node budget', async () => {
    let slow: string[] = [];
    running = await startServer({
      simChunks: 700,
      messagesPerMinute: 0,
      // The stream's own cap is never reached (700 chunks of ~60 KB are ~42 MB): only the node-wide budget can cut it.
      maxBufferedBytes: 64 * 1024 * 1024,
      maxBufferedTotalBytes: 24 * 1024 * 1024,
      onSlowConsumer: (transport) => (slow = [...slow, transport]),
    });
    const body = JSON.stringify({ model: 'simulated', stream: true, messages: [{ role: 'user', content: 'v'.repeat(60_000) }] });
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = httpRequest(`${running!.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (answer) => {
        answer.pause();
        paused.push(answer);
        resolve(answer);
      });
      request.on('error', reject);
      request.end(body);
    });
    expect(response.statusCode).toBe(200);
    let ended = false;
    response.on('close', () => (ended = true));
    const deadline = Date.now() + 30_000;
    while (slow.length === 0 && Date.now() < deadline) await wait(20);
    expect(slow).toEqual(['http']);
    // What it was sent, read now: the reply stops short of its end.
    let text = '';
    response.on('data', (part: Buffer) => (text += part.toString()));
    response.on('error', () => {});
    response.resume();
    while (!ended && Date.now() < deadline) await wait(20);
    expect(ended).toBe(true);
    expect(text).not.toContain('data: [DONE]');
    // The node goes on serving /v1.
    const next = await fetch(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(next.status).toBe(200);
  }, 60_000);
});
