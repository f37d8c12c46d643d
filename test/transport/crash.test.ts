import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { api, SseClient, WsClient } from '../support/harness.ts';
import type { Json } from '../support/harness.ts';
import { startChildServer } from '../support/childServer.ts';
import type { ChildServer } from '../support/childServer.ts';

const CHUNKS = 30;
const directory = mkdtempSync(join(tmpdir(), 'llm-chat-crash-'));
const running: ChildServer[] = [];
afterAll(async () => {
  for (const server of running) if (server.child.exitCode === null && server.child.signalCode === null) await server.stop('SIGKILL');
  rmSync(directory, { recursive: true, force: true });
});

const fullReply = (prompt: string) => Array.from({ length: CHUNKS }, (_, i) => `chunk ${i + 1}: ${prompt}`).join('');

async function start(): Promise<ChildServer> {
  const server = await startChildServer([
    '--data-dir', directory,
    '--sim-chunks', String(CHUNKS),
    '--sim-interval-ms', '20',
    '--flush-interval-ms', '100',
    '--log-level', 'info',
    '--store', 'sqlite',
  ], { DATABASE_URL: '' }); // a DATABASE_URL in the environment must not send this test elsewhere
  running.push(server);
  return server;
}

describe('crash safety (real server process, SQLite file, SIGKILL mid-stream)', () => {
  it('keeps every completed message and the in-flight reply as interrupted with its flushed text', async () => {
    const first = await start();
    const wsUrl = first.url.replace('http', 'ws') + '/ws';
    const { client, sessionId } = await WsClient.session(wsUrl);
    client.send('first');
    await client.waitFor((frame) => frame.type === 'completed');
    client.send('second');
    const isSecondChunk = (frame: Json) => frame.type === 'chunk' && String(frame['chunk']).endsWith(': second');
    await client.waitForCount(isSecondChunk, 12);
    const seen = client.frames.filter((frame) => frame.type === 'chunk');
    const killed = await first.stop('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    client.close();

    const second = await start();
    // The session exists only in the store now, and every endpoint finds it.
    const listed = await api(second.url, 'GET', '/api/sessions');
    expect((listed.body['sessions'] as Json[]).map((s) => s['sessionId'])).toContain(sessionId);
    const history = await api(second.url, 'GET', `/api/sessions/${sessionId}/messages`);
    expect(history.status).toBe(200);
    const messages = history.body['messages'] as Json[];
    expect(messages.map((m) => [m['role'], m['status']])).toEqual([
      ['user', 'complete'],
      ['assistant', 'complete'],
      ['user', 'complete'],
      ['assistant', 'interrupted'],
    ]);
    expect(messages[1]!['content']).toBe(fullReply('first'));
    const partial = String(messages[3]!['content']);
    expect(partial.length).toBeGreaterThan(0);
    expect(fullReply('second').startsWith(partial)).toBe(true);

    // Resume across the crash: the stored chunk log serves what was flushed after the client's position.
    const lastSeen = Number(seen.at(-1)!['seq']);
    const secondChunks = seen.filter(isSecondChunk);
    const from = Number(secondChunks[0]!['seq']);
    const sse = await SseClient.open(`${second.url}/sse/${sessionId}`, { 'last-event-id': String(from) });
    const replayed = await sse.waitFor(() => (sse.chunks.length > 0 ? sse.chunks : undefined));
    expect(replayed.map((c) => c['seq'])).toEqual(replayed.map((_, i) => from + 1 + i));
    expect(replayed.every((c) => c['messageId'] === messages[3]!['id'])).toBe(true);
    // The replayed chunks are the very ones streamed before the crash.
    for (const chunk of replayed) {
      const original = secondChunks.find((c) => c['seq'] === chunk['seq']);
      if (original) expect(chunk['chunk']).toBe(original['chunk']);
    }
    sse.close();

    // The session goes on; its chunk numbers start above the stored mark, past anything a client saw.
    const sent = await api(second.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'third' });
    expect(sent.status).toBe(202);
    const watcher = await WsClient.open(`${second.url.replace('http', 'ws')}/ws?sessionId=${sessionId}`);
    const next = await watcher.waitFor((frame) => frame.type === 'chunk');
    expect(Number(next['seq'])).toBeGreaterThan(lastSeen);
    watcher.close();

    const stopped = await second.stop('SIGTERM');
    expect(stopped.code).toBe(0);
  });
});
