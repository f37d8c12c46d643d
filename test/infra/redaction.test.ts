import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createPinoLogger } from '../../src/infra/pinoLogger.ts';
import { redactSecrets, redactText } from '../../src/infra/redactingLogger.ts';
import { api, SseClient, startServer, WsClient } from '../support/harness.ts';
import { ADMIN_TOKEN, createKey, revokeKey } from '../support/keys.ts';

function capture() {
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      raw.push(chunk.toString());
      done();
    },
  });
  return { raw, destination };
}

const KEY = `llmc_${'K'.repeat(43)}`;

describe('secrets in log lines', () => {
  it('an access_token in any URL and anything shaped like a key are replaced, in fields, nested ones and the message', () => {
    const { raw, destination } = capture();
    const logger = redactSecrets(createPinoLogger({ level: 'debug', destination }));
    logger.info({ url: `/ws?sessionId=abc&access_token=${KEY}&lastSeq=3`, nested: { list: [`Bearer ${KEY}`] }, count: 3 }, `upgrade /sse/x?access_token=${KEY}`);
    logger.child!({ header: `Bearer ${KEY}` }).warn({}, 'from a child');
    const text = raw.join('');
    expect(text).not.toContain(KEY);
    expect(text).not.toContain('K'.repeat(20));
    const [first, second] = raw.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(first).toMatchObject({ url: '/ws?sessionId=abc&access_token=[redacted]&lastSeq=3', nested: { list: ['Bearer llmc_[redacted]'] }, count: 3, msg: 'upgrade /sse/x?access_token=[redacted]' });
    expect(second).toMatchObject({ header: 'Bearer llmc_[redacted]', msg: 'from a child' });
    // A line without secrets goes out as it came.
    expect(redactText('GET /api/sessions?limit=5')).toBe('GET /api/sessions?limit=5');
  });

  it('a server at debug level, driven on every surface with a key in headers and in ?access_token=, never logs a key', async () => {
    const { raw, destination } = capture();
    const running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN }, logger: createPinoLogger({ level: 'debug', destination }) });
    const key = await createKey(running.url, 'logged');
    const { client, sessionId } = await WsClient.session(`${running.wsUrl}?access_token=${key.key}`);
    client.send('hello');
    await client.waitFor((frame) => frame['is_last'] === true);
    const sse = await SseClient.open(`${running.url}/sse/${sessionId}?access_token=${key.key}&lastEventId=0`);
    await sse.waitFor(() => sse.chunks.length > 0);
    sse.close();
    await api(running.url, 'GET', `/api/sessions/${sessionId}?access_token=${key.key}`, undefined, key.headers);
    await api(running.url, 'GET', `/nowhere?access_token=${key.key}`, undefined, key.headers);
    await api(running.url, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] }, key.headers);
    const refused = await WsClient.open(`${running.wsUrl}?access_token=${key.key.slice(0, -1)}Z`);
    await refused.closed();
    client.close();
    await client.closed();
    await running.close();
    const text = raw.join('');
    expect(raw.length).toBeGreaterThan(5); // it did log: requests, sockets, the key's creation
    expect(text).toContain(key.id);
    expect(text).not.toContain(key.key);
    expect(text).not.toContain(key.key.slice(5, 30));
  });

  it('logs a key made (id, name), a key revoked (id) and how many connections the revocation closed, never the key', async () => {
    const { raw, destination } = capture();
    const running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN }, logger: createPinoLogger({ level: 'info', destination }) });
    const key = await createKey(running.url, 'audited');
    try {
      const { client } = await WsClient.session(running.wsUrl, { headers: key.headers });
      expect(await revokeKey(running.url, key.id)).toBe(204);
      expect((await client.closed(1000)).code).toBe(4401);
    } finally {
      await running.close();
    }
    const lines = raw.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'API key created', keyId: key.id, name: 'audited' }));
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'API key revoked', keyId: key.id }));
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'closed the connections of a revoked key', keyId: key.id, closed: 1 }));
    expect(raw.join('')).not.toContain(key.key);
  });
});
