import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/infra/sqliteStore.ts';
import { flaky } from '../support/flakyStore.ts';
import { api, startServer, WsClient } from '../support/harness.ts';
import type { Json, RunningServer } from '../support/harness.ts';

// A short idle TTL, so sessions passivate within the outage (the sweep runs every TTL / 4).
const TTL_MS = 1000;
const SWEEP_MS = TTL_MS / 4;
const CHUNKS = 5;

const directory = mkdtempSync(join(tmpdir(), 'llm-chat-passivated-outage-'));
const servers: RunningServer[] = [];
const clients: WsClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) await server.close();
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const replyTo = (text: string) => Array.from({ length: CHUNKS }, (_, index) => `chunk ${index + 1}: ${text}`).join('');

async function until(what: string, ms: number, probe: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Sends over the socket; resolves with the answer to it: `accepted` or the `error` frame's code. */
async function sendOverWs(client: WsClient, text: string): Promise<string> {
  const before = client.frames.length;
  client.send(text);
  const answer = await client.waitFor((frame) => client.frames.indexOf(frame) >= before && ((frame.type === 'accepted' && frame['text'] === text) || frame.type === 'error'));
  return answer.type === 'accepted' ? 'accepted' : String(answer['code']);
}

async function watched(server: RunningServer): Promise<{ sessionId: string; client: WsClient }> {
  const sessionId = String((await api(server.url, 'POST', '/api/sessions')).body['sessionId']);
  const client = await WsClient.open(`${server.wsUrl}?sessionId=${sessionId}`);
  clients.push(client);
  return { sessionId, client };
}

/** Sends a message and waits until its reply is complete and written: nothing of the session is left unstored. */
async function answered(server: RunningServer, session: { sessionId: string; client: WsClient }, text: string): Promise<void> {
  expect(await sendOverWs(session.client, text)).toBe('accepted');
  await session.client.waitFor((frame) => frame.type === 'completed' && frame['messageId'] === acceptedId(session.client, text));
  await until(`"${text}" written`, 2000, () => !server.server.registry.pendingWrites(session.sessionId));
}

const acceptedId = (client: WsClient, text: string) => client.frames.find((frame) => frame.type === 'accepted' && frame['text'] === text)?.['messageId'];

/** Once the store is back: retries a message over each socket until accepted; every one must be within 5 s. Resolves with the times. */
async function servedAgain(sessions: readonly { client: WsClient }[], backAt: number): Promise<number[]> {
  const servedAfterMs: number[] = [];
  for (const { client } of sessions) {
    for (let attempt = 0; (await sendOverWs(client, `after ${attempt}`)) !== 'accepted'; attempt += 1) {
      expect(Date.now() - backAt).toBeLessThan(5000);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    servedAfterMs.push(Date.now() - backAt);
    expect(servedAfterMs.at(-1)).toBeLessThan(5000);
    await client.waitForCount((frame) => frame.type === 'completed', 2);
  }
  return servedAfterMs;
}

/** The history as the store has it: waits until the sessions have passivated (everything written), then reads them. */
async function expectStoredHistory(server: RunningServer, sessions: readonly { sessionId: string; client: WsClient; first: string }[]): Promise<void> {
  const registry = server.server.registry;
  await until('passivated after the outage', 10_000, () => sessions.every(({ sessionId }) => registry.peek(sessionId) === undefined));
  for (const { sessionId, client, first } of sessions) {
    const after = String(client.frames.find((frame) => frame.type === 'accepted' && String(frame['text']).startsWith('after'))!['text']);
    const history = await api(server.url, 'GET', `/api/sessions/${sessionId}/messages?limit=20`);
    expect(history.status).toBe(200);
    expect((history.body['messages'] as Json[]).map((message) => [message['role'], message['content'], message['status']])).toEqual([
      ['user', first, 'complete'],
      ['assistant', replyTo(first), 'complete'],
      ['user', after, 'complete'],
      ['assistant', replyTo(after), 'complete'],
    ]);
  }
}

async function serverOn(name: string): Promise<{ server: RunningServer; store: ReturnType<typeof flaky> }> {
  const store = flaky(openSqliteStore({ path: join(directory, `${name}.sqlite`) }));
  const server = await startServer({ store, sessionTtlMs: TTL_MS, simChunks: CHUNKS, simIntervalMs: 40, flushIntervalMs: 50, messagesPerMinute: 0 });
  servers.push(server);
  return { server, store };
}

describe('a store outage while sessions passivate (real server, SQLite behind a failing switch, real WebSocket clients)', () => {
  it('sessions passivated during the outage, or before it and asked for during it, serve within 5 s once the store answers, history intact', { timeout: 30_000 }, async () => {
    const { server, store } = await serverOn('passivated');
    const registry = server.server.registry;
    // Nothing is left to write when the store goes: only the health's own probes can find it back.
    const early = { ...(await watched(server)), first: 'passivated before' };
    await answered(server, early, early.first);
    await until('passivated before the outage', TTL_MS + 3 * SWEEP_MS + 2000, () => registry.peek(early.sessionId) === undefined);
    const late = { ...(await watched(server)), first: 'passivated during' };
    await answered(server, late, late.first);

    store.down = true;
    // Asked for at once (the health most likely has not probed yet): its load fails, and must not stick.
    expect(await sendOverWs(early.client, 'early during')).toBe('store_unavailable');
    expect(registry.peek(late.sessionId)).toBeDefined(); // still active: it passivates during the outage
    await until('passivated during the outage', TTL_MS + 3 * SWEEP_MS + 2000, () => registry.peek(late.sessionId) === undefined);
    expect(await sendOverWs(late.client, 'late during')).toBe('store_unavailable');
    expect(registry.activeCount).toBe(0); // failed activations leave nothing behind

    store.down = false;
    const servedAfterMs = await servedAgain([early, late], Date.now());
    console.info(`[passivated outage] passivated sessions served again ${servedAfterMs.join(' ms, ')} ms after the store came back`);
    await expectStoredHistory(server, [early, late]);
  });

  it('a session whose last writes failed during the outage is kept active past its TTL, then serves within 5 s once the store answers, history intact', { timeout: 30_000 }, async () => {
    const { server, store } = await serverOn('unwritten');
    const registry = server.server.registry;
    const unwritten = { ...(await watched(server)), first: 'unwritten before' };
    expect(await sendOverWs(unwritten.client, unwritten.first)).toBe('accepted');
    await unwritten.client.waitFor((frame) => frame.type === 'chunk');
    store.down = true;
    // The reply finishes on the screen; its last writes fail and wait for a retry.
    await unwritten.client.waitFor((frame) => frame.type === 'completed');
    const completedAt = Date.now();
    await until('past the TTL and two sweeps', TTL_MS + 2 * SWEEP_MS + 500, () => Date.now() - completedAt >= TTL_MS + 2 * SWEEP_MS);
    // Its changes are not in the store: it is kept active rather than passivated and reloaded without them.
    expect(registry.pendingWrites(unwritten.sessionId)).toBe(true);
    expect(registry.peek(unwritten.sessionId)).toBeDefined();
    expect(await sendOverWs(unwritten.client, 'unwritten during')).toBe('store_unavailable');

    store.down = false;
    const servedAfterMs = await servedAgain([unwritten], Date.now());
    console.info(`[passivated outage] the unwritten session served again ${servedAfterMs[0]} ms after the store came back`);
    // Its retried writes land, then it passivates like any idle session, and the store has it all.
    await expectStoredHistory(server, [unwritten]);
  });
});
