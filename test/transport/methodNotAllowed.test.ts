import { afterEach, describe, expect, it } from 'vitest';
import { api, startServer } from '../support/harness.ts';
import type { Json, RunningServer } from '../support/harness.ts';

const servers: RunningServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function start(options: Parameters<typeof startServer>[0] = {}) {
  const server = await startServer(options);
  servers.push(server);
  return server;
}

describe('a wrong method on an endpoint that exists is 405 with Allow, not "no such endpoint"', () => {
  it('REST, the health probe and /v1 (in OpenAI\'s error shape) name the methods they take; unknown paths stay 404', async () => {
    const server = await start();
    const sessionId = String((await api(server.url, 'POST', '/api/sessions')).body['sessionId']);
    for (const [method, path, allow] of [
      ['PUT', '/api/sessions', 'GET, HEAD, OPTIONS, POST'],
      ['PATCH', `/api/sessions/${sessionId}`, 'DELETE, GET, HEAD, OPTIONS'],
      ['GET', `/api/sessions/${sessionId}/cancel`, 'OPTIONS, POST'],
      ['POST', '/healthz', 'GET, HEAD, OPTIONS'],
    ] as const) {
      const answer = await api(server.url, method, path);
      expect({ method, path, status: answer.status, allow: answer.headers.get('allow') }).toEqual({ method, path, status: 405, allow });
      expect((answer.body['error'] as Json)['code']).toBe('method_not_allowed');
    }
    const v1 = await api(server.url, 'GET', '/v1/chat/completions');
    expect(v1.status).toBe(405);
    expect(v1.headers.get('allow')).toBe('OPTIONS, POST');
    expect(v1.body['error']).toMatchObject({ code: 'method_not_allowed', type: expect.any(String), message: expect.any(String) });

    // Where no method is taken, it is still not_found (and the wrong method changes nothing stored).
    expect((await api(server.url, 'GET', '/api/nothing-here')).status).toBe(404);
    expect(((await api(server.url, 'DELETE', '/nothing-here')).body['error'] as Json)['code']).toBe('not_found');
    expect(((await api(server.url, 'GET', '/v1/nothing-here')).body['error'] as Json)['code']).toBe('not_found');
    expect((await api(server.url, 'GET', `/api/sessions/${sessionId}`)).status).toBe(200);
  });

  it('with keys on, a caller without one still gets 401 first: the method table is not a way around the guard', async () => {
    const server = await start({ auth: { mode: 'keys' } });
    const answer = await api(server.url, 'PUT', '/api/sessions');
    expect(answer.status).toBe(401);
  });
});
