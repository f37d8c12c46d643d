import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { withFields } from '../../src/domain/ports.ts';
import { createPinoLogger } from '../../src/infra/pinoLogger.ts';
import { api, startServer, WsClient } from '../support/harness.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, destination };
}

describe('pino logger', () => {
  it('writes one JSON object per line with time, level name and message; the level filters', () => {
    const { lines, destination } = capture();
    const logger = createPinoLogger({ level: 'info', destination });
    logger.debug({ hidden: true }, 'not shown');
    logger.warn({ sessionId: 's1' }, 'careful');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', msg: 'careful', sessionId: 's1' });
    expect(new Date(String(lines[0]?.['time'])).toISOString()).toBe(lines[0]?.['time']);
  });

  it('child loggers put their fields on every line', () => {
    const { lines, destination } = capture();
    const logger = withFields(createPinoLogger({ level: 'debug', destination }), { requestId: 'r-1' });
    logger.debug({}, 'one');
    logger.error({ code: 'x' }, 'two');
    expect(lines.map((line) => line['requestId'])).toEqual(['r-1', 'r-1']);
  });

  it('the server tags each request and each WebSocket connection with an id', async () => {
    const { lines, destination } = capture();
    const running = await startServer({ logger: createPinoLogger({ level: 'debug', destination }) });
    const offered = await api(running.url, 'GET', '/healthz', undefined, { 'x-request-id': 'trace-abc-123' });
    expect(offered.headers.get('x-request-id')).toBe('trace-abc-123');
    const made = await api(running.url, 'GET', '/healthz');
    expect(made.headers.get('x-request-id')).toMatch(/^[\w-]{12}$/);
    const { client } = await WsClient.session(running.wsUrl);
    client.close();
    await client.closed();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await running.close();
    const requests = lines.filter((line) => line['msg'] === 'request');
    expect(requests.map((line) => line['requestId'])).toEqual(expect.arrayContaining(['trace-abc-123', made.headers.get('x-request-id')]));
    const socketLines = lines.filter((line) => String(line['msg']).startsWith('websocket'));
    expect(socketLines.length).toBeGreaterThanOrEqual(2);
    expect(new Set(socketLines.map((line) => line['connectionId'])).size).toBe(1);
    expect(socketLines[0]?.['connectionId']).toMatch(/^[\w-]{12}$/);
  });
});
