import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryStore } from '../src/infra/memoryStore.ts';
import type { SessionId } from '../src/domain/ids.ts';
import { SseClient, startServer, WsClient } from './support/harness.ts';
import type { Json } from './support/harness.ts';

const isChunk = (frame: Json) => frame.type === 'chunk';

describe('graceful shutdown (in process)', () => {
  it('tells clients, lets the reply in flight finish, closes WebSockets with 1001 and SSE after session.stopped', async () => {
    const running = await startServer({ simIntervalMs: 60 });
    const { client: busy, sessionId } = await WsClient.session(running.wsUrl);
    const { client: idle } = await WsClient.session(running.wsUrl);
    const sse = await SseClient.open(`${running.url}/sse/${sessionId}`);
    busy.send('finish me');
    await busy.waitFor(isChunk);

    const done = running.server.shutdown(5000);
    // The idle session's watcher is let go at once; the busy one keeps streaming.
    expect((await idle.closed()).code).toBe(1001);
    expect(idle.frames.map((frame) => frame.type)).toEqual(['session', 'shutdown', 'stopped']);
    await expect(WsClient.open(running.wsUrl)).rejects.toThrow();
    await done;

    expect(busy.frames.filter(isChunk)).toHaveLength(5);
    const types = busy.frames.map((frame) => frame.type);
    expect(types.indexOf('shutdown')).toBeLessThan(types.indexOf('completed'));
    expect(busy.frames.at(-1)).toMatchObject({ type: 'stopped', reason: 'shutdown' });
    expect(busy.frames.find((frame) => frame.type === 'shutdown')).toMatchObject({ deadlineMs: 5000 });
    expect((await busy.closed()).code).toBe(1001);

    await sse.waitFor(() => sse.ended);
    const events = sse.messages.map((message) => message.event ?? 'chunk');
    expect(events[0]).toBe('message.accepted');
    expect(events).toContain('server.shutdown');
    expect(events.at(-1)).toBe('session.stopped');
    expect(events.filter((event) => event === 'chunk')).toHaveLength(5);
  });

  it('at the deadline interrupts the reply: watchers get `interrupted`, the store keeps the partial text as interrupted', async () => {
    const store = createMemoryStore();
    const kept = { ...store, close: async () => {} }; // read it after the server has gone
    const running = await startServer({ simIntervalMs: 200, store: kept });
    const { client, sessionId } = await WsClient.session(running.wsUrl);
    client.send('too slow');
    client.send('queued behind it');
    await client.waitFor(isChunk);
    await running.server.shutdown(100);

    const interrupted = client.frames.find((frame) => frame.type === 'interrupted');
    expect(interrupted).toMatchObject({ sessionId });
    expect(client.frames.filter((frame) => frame.type === 'cancelled')).toHaveLength(1); // the queued one never started
    expect(client.frames.at(-1)).toMatchObject({ type: 'stopped', reason: 'shutdown' });
    expect((await client.closed()).code).toBe(1001);

    const record = await store.load(sessionId as SessionId);
    const reply = record?.messages.find((message) => message.id === interrupted?.['messageId']);
    expect(reply).toMatchObject({ status: 'interrupted', content: 'chunk 1: too slow' });
    expect(record?.messages.find((message) => message.content === 'queued behind it')?.status).toBe('cancelled');
  });

  it('close() during a drain stops waiting: the reply is interrupted at once (a second signal)', async () => {
    const running = await startServer({ simIntervalMs: 300 });
    const { client } = await WsClient.session(running.wsUrl);
    client.send('endless');
    await client.waitFor(isChunk);
    const graceful = running.server.shutdown(60_000);
    const started = Date.now();
    await running.server.close();
    await graceful;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(client.frames.map((frame) => frame.type)).toContain('interrupted');
  });

  it('refuses new messages while draining', async () => {
    const running = await startServer({ simIntervalMs: 100 });
    const { client, sessionId } = await WsClient.session(running.wsUrl);
    client.send('in flight');
    await client.waitFor(isChunk);
    const done = running.server.shutdown(5000);
    client.send('one more');
    const refused = await client.waitFor((frame) => frame.type === 'error');
    expect(refused).toMatchObject({ code: 'overloaded' });
    expect(running.server.registry.peek(sessionId)?.busy).toBe(true);
    await done;
  });
});

// ---- a real process ----------------------------------------------------------

interface Child {
  process: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `src/main.ts` in a child process on a free port and reads its URL from the log line. */
async function startChild(args: string[]): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--port', '0', '--host', '127.0.0.1', '--log-format', 'json', '--store', 'memory', '--auth', 'none', ...args], {
    cwd: process.cwd(),
    env: { ...process.env, ADMIN_TOKEN: '', INSPECTOR: 'false' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line in 15 s: ${stderr}`)), 15_000);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      stderr += text;
      const match = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(stderr);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    void exited.then((code) => reject(new Error(`exited with ${code}: ${stderr}`)));
  });
  return { process: child, url, stderr: () => stderr, exited };
}

describe('graceful shutdown of the real process', () => {
  let child: Child | undefined;
  afterEach(() => {
    if (child && child.process.exitCode === null) child.process.kill('SIGKILL');
    child = undefined;
  });

  it('on SIGTERM lets the reply finish, closes with 1001 and exits 0', async () => {
    child = await startChild(['--sim-interval-ms', '150', '--shutdown-deadline-ms', '5000']);
    const { client } = await WsClient.session(`${child.url.replace('http', 'ws')}/ws`);
    client.send('see it through');
    await client.waitFor(isChunk);
    child.process.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    expect(client.frames.filter(isChunk).map((frame) => frame['chunk'])).toEqual([1, 2, 3, 4, 5].map((n) => `chunk ${n}: see it through`));
    expect(client.frames.map((frame) => frame.type)).toEqual(expect.arrayContaining(['shutdown', 'completed']));
    expect((await client.closed()).code).toBe(1001);
    const log = child.stderr();
    expect(log).toContain('"msg":"shutting down: letting replies in flight finish"');
    expect(log).toContain('"finished":1,"interrupted":0');
    expect(log).toContain('"msg":"shut down"');
    // Every line is JSON with a level and a message.
    for (const line of log.trim().split('\n')) expect(JSON.parse(line)).toMatchObject({ level: expect.any(String), msg: expect.any(String) });
  });

  it('on SIGINT past the deadline interrupts the reply and still exits 0', async () => {
    child = await startChild(['--sim-interval-ms', '1000', '--shutdown-deadline-ms', '200']);
    const { client, sessionId } = await WsClient.session(`${child.url.replace('http', 'ws')}/ws`);
    client.send('cut short');
    await client.waitFor(isChunk, 5000);
    child.process.kill('SIGINT');
    expect(await child.exited).toBe(0);
    expect(client.frames.find((frame) => frame.type === 'interrupted')).toMatchObject({ sessionId });
    expect((await client.closed()).code).toBe(1001);
    expect(child.stderr()).toContain('"finished":0,"interrupted":1');
  });

  it('refuses a bad configuration with a clear message and exit code 2', async () => {
    const failing = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--admin-token', 'short'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    failing.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const code = await new Promise<number | null>((resolve) => failing.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toContain('--admin-token (ADMIN_TOKEN) must be at least 16 characters');
  });
});
