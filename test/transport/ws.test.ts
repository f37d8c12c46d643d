import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';

let running: RunningServer;
const clients: WsClient[] = [];

beforeEach(async () => {
  running = await startServer({ simIntervalMs: 5 });
});
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await running.close();
});

async function session() {
  const opened = await WsClient.session(running.wsUrl);
  clients.push(opened.client);
  return opened;
}

async function attach(sessionId: string, extra = '') {
  const client = await WsClient.open(`${running.wsUrl}?sessionId=${sessionId}${extra}`);
  clients.push(client);
  await client.waitFor((frame) => frame.type === 'session');
  return client;
}

const isChunk = (frame: { type?: string }) => frame.type === 'chunk';

describe('WebSocket /ws', () => {
  it('tells a new client its session id in the first frame', async () => {
    const { client, sessionId } = await session();
    expect(client.frames[0]).toEqual({ type: 'session', sessionId });
    expect(sessionId).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('answers plain text (the seed protocol) with five chunks, is_last on the fifth', async () => {
    const { client, sessionId } = await session();
    client.send('hello');
    const chunks = await client.waitForCount(isChunk, 5);
    expect(chunks.map((frame) => frame['chunk'])).toEqual([1, 2, 3, 4, 5].map((n) => `chunk ${n}: hello`));
    expect(chunks.map((frame) => frame['is_last'])).toEqual([false, false, false, false, true]);
    expect(chunks.map((frame) => frame['seq'])).toEqual([1, 2, 3, 4, 5]);
    const accepted = client.frames.find((frame) => frame.type === 'accepted');
    expect(accepted).toMatchObject({ sessionId, text: 'hello', position: 0 });
    expect(new Set(chunks.map((frame) => frame['messageId']))).toEqual(new Set([accepted?.['messageId']]));
    expect(client.frames.indexOf(accepted!)).toBeLessThan(client.frames.indexOf(chunks[0]!));
  });

  it('takes JSON message frames as well', async () => {
    const { client } = await session();
    client.send(JSON.stringify({ type: 'message', text: '{not json inside}' }));
    const chunks = await client.waitForCount(isChunk, 5);
    expect(chunks[0]?.['chunk']).toBe('chunk 1: {not json inside}');
  });

  it('sends every chunk to every socket watching the session, identically', async () => {
    const { client, sessionId } = await session();
    const second = await attach(sessionId);
    client.send('fan out');
    const [a, b] = await Promise.all([client.waitForCount(isChunk, 5), second.waitForCount(isChunk, 5)]);
    expect(b).toEqual(a);
    // The watcher may send too, and the first socket sees that reply.
    await second.send('from the other tab');
    const all = await client.waitForCount(isChunk, 10);
    expect(all[9]?.['chunk']).toBe('chunk 5: from the other tab');
  });

  it('resumes after ?lastSeq= with no gap and no duplicate', async () => {
    const { client, sessionId } = await session();
    client.send('resume me');
    await client.waitForCount(isChunk, 5);
    const late = await attach(sessionId, '&lastSeq=2');
    const chunks = await late.waitForCount(isChunk, 3);
    expect(chunks.map((frame) => frame['seq'])).toEqual([3, 4, 5]);
  });

  it('refuses an unknown session id with session_not_found and close 4404', async () => {
    const client = await WsClient.open(`${running.wsUrl}?sessionId=${'x'.repeat(22)}`);
    clients.push(client);
    const closed = await client.closed();
    expect(client.frames).toEqual([{ type: 'error', code: 'session_not_found', message: 'No session with this id.' }]);
    expect(closed.code).toBe(4404);
  });

  it('answers invalid JSON with bad_request and stays usable', async () => {
    const { client } = await session();
    client.send('{"type": "message", oops');
    const error = await client.waitFor((frame) => frame.type === 'error');
    expect(error).toMatchObject({ code: 'bad_request' });
    client.send(JSON.stringify({ type: 'dance' }));
    await client.waitForCount((frame) => frame.type === 'error', 2);
    client.send('still here');
    await client.waitForCount(isChunk, 5);
    expect(client.closeEvent).toBeUndefined();
  });

  it('refuses binary frames and empty messages with bad_request', async () => {
    const { client } = await session();
    client.send(Buffer.from([1, 2, 3]));
    client.send('   ');
    const errors = await client.waitForCount((frame) => frame.type === 'error', 2);
    expect(errors.map((frame) => frame['code'])).toEqual(['bad_request', 'bad_request']);
  });

  it('closes with 1009 on a frame over the size limit', async () => {
    const { client } = await session();
    client.send('x'.repeat(64 * 1024 + 1));
    expect((await client.closed()).code).toBe(1009);
  });

  it('refuses a message beyond the queue with busy, naming no message', async () => {
    await running.close();
    running = await startServer({ simIntervalMs: 50, queueLimit: 1 });
    const { client } = await session();
    client.send('one');
    client.send('two');
    client.send('three');
    const error = await client.waitFor((frame) => frame.type === 'error');
    expect(error).toMatchObject({ code: 'busy' });
    expect(client.frames.filter((frame) => frame.type === 'accepted')).toHaveLength(2);
  });

  it('cancel stops the reply for every watcher and keeps the partial text', async () => {
    await running.close();
    running = await startServer({ simIntervalMs: 40 });
    const { client, sessionId } = await session();
    const watcher = await attach(sessionId);
    client.send('long answer');
    await client.waitForCount(isChunk, 2);
    client.send(JSON.stringify({ type: 'cancel' }));
    const cancelled = await watcher.waitFor((frame) => frame.type === 'cancelled');
    // A next reply runs to its end; had the cancelled one gone on, its chunks would show up meanwhile.
    client.send('after the cancel');
    await client.waitFor((frame) => frame.type === 'completed');
    const cancelledAt = client.frames.findIndex((frame) => frame.type === 'cancelled');
    expect(client.frames.slice(cancelledAt).some((frame) => isChunk(frame) && frame['messageId'] === cancelled['messageId'])).toBe(false);
    const live = await running.server.registry.find(sessionId);
    const reply = (await live!.view()).messages.find((message) => message.id === cancelled['messageId']);
    expect(reply?.status).toBe('cancelled');
    expect(reply?.content).toContain('chunk 1: long answer');
  });

  it('a disconnect does not cancel: the reply completes and a returning client can resume it', async () => {
    await running.close();
    running = await startServer({ simIntervalMs: 30 });
    const { client, sessionId } = await session();
    client.send('keep going');
    await client.waitForCount(isChunk, 1);
    client.close();
    const back = await attach(sessionId, '&lastSeq=1');
    const chunks = await back.waitForCount(isChunk, 4);
    expect(chunks.map((frame) => frame['seq'])).toEqual([2, 3, 4, 5]);
    expect(chunks.at(-1)?.['is_last']).toBe(true);
  });

  it('refuses upgrades on other paths', async () => {
    await expect(WsClient.open(running.wsUrl.replace('/ws', '/other'))).rejects.toThrow(/404/);
  });
});
