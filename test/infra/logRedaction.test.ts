import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { redactFields, redactText } from '../../src/infra/logRedaction.ts';
import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import { createPinoLogger } from '../../src/infra/pinoLogger.ts';
import { flaky } from '../support/flakyStore.ts';
import { api, SseClient, startServer, WsClient } from '../support/harness.ts';

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function capture() {
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      raw.push(chunk.toString());
      done();
    },
  });
  const lines = () =>
    raw
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { raw, lines, destination };
}

async function until(probe: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe() && Date.now() < deadline) await wait(10);
  if (!probe()) throw new Error('timed out');
}

describe('session ids never appear whole in logs', () => {
  it('redactText cuts every id-shaped token (22 base64url characters) to a short prefix, and leaves the rest alone', () => {
    const id = 'AbCdEfGhIjKlMnOpQrStUv';
    expect(redactText(id)).toBe('AbCdEf…');
    expect(redactText(`/api/sessions/${id}/messages`)).toBe('/api/sessions/AbCdEf…/messages');
    expect(redactText(`/ws?sessionId=${id}&lastSeq=3`)).toBe('/ws?sessionId=AbCdEf…&lastSeq=3');
    expect(redactText('a 12-char id: r-123456789a, a uuid 0c7e5a8e-4b39-4d9a-9c1b-2f8f0e1c2d3e')).toBe('a 12-char id: r-123456789a, a uuid 0c7e5a8e-4b39-4d9a-9c1b-2f8f0e1c2d3e');
    expect(redactFields({ nested: { list: [`x ${id}`] }, count: 3 })).toEqual({ nested: { list: ['x AbCdEf…'] }, count: 3 });
    const error = redactFields({ err: new Error(`no row for ${id}`) })['err'] as { message: string; stack: string };
    expect(error.message).toBe('no row for AbCdEf…');
    expect(error.stack).not.toContain(id);
  });

  it('through attach, requests with ids in their path, a slow consumer, a failed store write and close, at debug level', async () => {
    const { raw, lines, destination } = capture();
    const store = flaky(createMemoryStore());
    const running = await startServer({
      logger: createPinoLogger({ level: 'debug', destination }),
      store,
      simChunks: 200,
      simIntervalMs: 0,
      maxBufferedBytes: 64 * 1024,
      messagesPerMinute: 0,
    });
    try {
      const { client, sessionId } = await WsClient.session(running.wsUrl); // websocket attached
      await api(running.url, 'GET', `/api/sessions/${sessionId}`);
      await api(running.url, 'GET', `/api/sessions/${sessionId}/messages?limit=1`);
      await api(running.url, 'GET', `/api/sessions/${'Z'.repeat(22)}`); // an unknown id: 404, path logged too
      const sse = await SseClient.open(`${running.url}/sse/${sessionId}`);
      // A slow consumer on the same session.
      const stalled = await WsClient.open(`${running.wsUrl}?sessionId=${sessionId}`);
      await stalled.waitFor((frame) => frame.type === 'session');
      stalled.socket.pause();
      client.send('y'.repeat(60_000)); // 200 chunks × 60 kB ≈ 12 MB: more than the kernel buffers take
      await until(() => lines().some((line) => line['msg'] === 'closing slow websocket consumer'));
      await client.waitFor((frame) => frame['is_last'] === true, 10_000);
      // A store write that fails (then succeeds once the store is back).
      client.send('short');
      await client.waitForCount((frame) => frame.type === 'accepted', 2);
      store.down = true;
      await until(() => lines().some((line) => line['msg'] === 'store write failed; will retry'), 10_000);
      store.down = false;
      await client.waitForCount((frame) => frame['is_last'] === true, 2, 10_000);
      client.close();
      sse.close();
      await until(() => lines().some((line) => line['msg'] === 'websocket closed'));
      await wait(50);

      const all = raw.join('');
      const prefix = `${sessionId.slice(0, 6)}…`;
      for (const message of ['websocket attached', 'closing slow websocket consumer', 'store write failed; will retry', 'websocket closed']) {
        const line = lines().find((candidate) => candidate['msg'] === message);
        expect(line, message).toMatchObject({ sessionId: prefix });
      }
      const paths = lines()
        .filter((line) => line['msg'] === 'request')
        .map((line) => String(line['path']));
      expect(paths).toEqual(expect.arrayContaining([`/api/sessions/${prefix}`, `/api/sessions/${prefix}/messages`, `/sse/${prefix}`, '/api/sessions/ZZZZZZ…']));
      expect(all).not.toContain(sessionId);
      expect(all).not.toContain('Z'.repeat(22));
    } finally {
      await running.close();
    }
  });
});
