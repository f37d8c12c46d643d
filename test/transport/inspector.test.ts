import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { api, startServer } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';

const TOKEN = 'inspector-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
let running: RunningServer | undefined;

afterEach(async () => {
  await running?.close();
  running = undefined;
});

interface StreamEvent {
  event: string;
  data: Record<string, unknown>;
}

/** Reads `/inspector/stream` over raw HTTP and parses its named events. */
function openStream(url: string) {
  const events: StreamEvent[] = [];
  let buffer = '';
  let wake: () => void = () => {};
  const abort = new AbortController();
  const ready = new Promise<number>((resolve, reject) => {
    const request = httpRequest(url, { headers: auth, signal: abort.signal }, (response) => {
      response.setEncoding('utf8');
      response.on('data', (text: string) => {
        buffer += text;
        let end;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (data) events.push({ event, data: JSON.parse(data) as Record<string, unknown> });
        }
        wake();
      });
      response.on('error', () => {});
      resolve(response.statusCode ?? 0);
    });
    request.on('error', (error) => (abort.signal.aborted ? undefined : reject(error)));
    request.end();
  });
  const until = async (probe: () => boolean, what: string) => {
    const deadline = Date.now() + 5000;
    while (!probe()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(events.slice(-5))}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  };
  return { events, ready, until, close: () => abort.abort() };
}

const records = (events: StreamEvent[]) => events.filter((event) => event.event === 'inspect').map((event) => event.data);

describe('inspector', () => {
  it('is not served at all unless enabled', async () => {
    running = await startServer();
    expect((await api(running.url, 'GET', '/inspector')).status).toBe(404);
    expect((await api(running.url, 'GET', '/inspector/api/overview', undefined, auth)).status).toBe(404);
  });

  it('serves its page, but no data without the admin token', async () => {
    running = await startServer({ inspector: { adminToken: TOKEN } });
    const page = await fetch(`${running.url}/inspector`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).not.toContain(TOKEN);
    const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-token-wrong-token' }, { authorization: TOKEN }];
    for (const headers of attempts) {
      const response = await api(running.url, 'GET', '/inspector/api/overview', undefined, headers);
      expect(response.status).toBe(401);
      expect(response.body).toEqual({ error: { code: 'unauthorized', message: 'A valid admin token is required.' } });
    }
    expect((await api(running.url, 'GET', '/inspector/stream')).status).toBe(401);
  });

  it('lists live sessions with each machine state and counts by state', async () => {
    running = await startServer({ inspector: { adminToken: TOKEN }, simIntervalMs: 50 });
    const first = String((await api(running.url, 'POST', '/api/sessions')).body['sessionId']);
    const second = String((await api(running.url, 'POST', '/api/sessions')).body['sessionId']);
    await api(running.url, 'POST', `/api/sessions/${second}/messages`, { text: 'busy' });
    const { status, body } = await api(running.url, 'GET', '/inspector/api/overview', undefined, auth);
    expect(status).toBe(200);
    // An idle session has a dormant supervisor and no session actor at all (it is spawned for work).
    expect(body).toMatchObject({ live: 2, bySupervisor: { dormant: 1, running: 1 }, bySession: { none: 1, generating: 1 }, restarts: 0 });
    const sessions = body['sessions'] as Record<string, unknown>[];
    expect(sessions.map((session) => session['sessionId'])).toEqual([second, first]); // most recent first
    expect(sessions[0]).toMatchObject({ supervisor: 'running', session: 'generating', messages: 2, pending: 1 });
    const machines = await api(running.url, 'GET', '/inspector/api/machines', undefined, auth);
    expect(JSON.stringify(machines.body)).toContain('"key":"restarting"');
  });

  it('attaches an XState observer only while somebody watches the session, and streams its transitions', async () => {
    running = await startServer({ inspector: { adminToken: TOKEN }, simIntervalMs: 5 });
    const hub = running.server.inspection;
    const sessionId = String((await api(running.url, 'POST', '/api/sessions')).body['sessionId']);
    await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'unwatched' });
    while ((await api(running.url, 'GET', `/api/sessions/${sessionId}`)).body['status'] !== 'idle') await new Promise((resolve) => setTimeout(resolve, 10));
    expect(hub?.attachedCount).toBe(0);

    const overviewOnly = openStream(`${running.url}/inspector/stream`);
    expect(await overviewOnly.ready).toBe(200);
    await overviewOnly.until(() => overviewOnly.events.some((event) => event.event === 'overview'), 'overview');
    expect(hub?.attachedCount).toBe(0);
    overviewOnly.close();

    const stream = openStream(`${running.url}/inspector/stream?sessionId=${sessionId}`);
    expect(await stream.ready).toBe(200);
    await stream.until(() => records(stream.events).length > 0, 'the first record');
    expect(hub?.attachedCount).toBe(1);
    expect(records(stream.events)[0]).toMatchObject({ source: 'state', overview: { supervisor: 'dormant', session: null } });

    await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'watched words' });
    await stream.until(() => records(stream.events).some((record) => record['event'] === 'message.completed'), 'completion');
    await stream.until(
      () => records(stream.events).some((record) => record['kind'] === 'transition' && record['state'] === 'dormant' && record['actor'] === 'supervisor'),
      'back to dormant',
    );
    const seen = records(stream.events);
    expect(seen).toContainEqual(
      expect.objectContaining({ source: 'xstate', kind: 'transition', actor: 'supervisor', event: 'user.message', state: 'running', transitions: [{ from: 'dormant', to: ['running'] }] }),
    );
    expect(seen).toContainEqual(expect.objectContaining({ source: 'xstate', actor: 'session', state: 'generating' }));
    expect(seen).toContainEqual(expect.objectContaining({ source: 'domain', event: 'message.accepted', text: 'watched words' }));
    expect(seen).toContainEqual(expect.objectContaining({ source: 'domain', event: 'chunk', seq: 6, text: 'chunk 1: watched words' }));
    // Contexts (conversation, bus, store) never leave the server.
    expect(JSON.stringify(seen)).not.toMatch(/context|"deps"|conversation/);

    stream.close();
    await stream.until(() => hub?.attachedCount === 0, 'the observer to be detached');
  });

  it("a watcher of one session gets none of another session's actor records (all sessions share one actor system)", async () => {
    running = await startServer({ inspector: { adminToken: TOKEN }, simIntervalMs: 5 });
    const watchedId = String((await api(running.url, 'POST', '/api/sessions')).body['sessionId']);
    const otherId = String((await api(running.url, 'POST', '/api/sessions')).body['sessionId']);
    const stream = openStream(`${running.url}/inspector/stream?sessionId=${watchedId}`);
    expect(await stream.ready).toBe(200);
    await stream.until(() => records(stream.events).length > 0, 'the first record');
    const xstateRecords = () => records(stream.events).filter((record) => record['source'] === 'xstate');
    expect(xstateRecords()).toEqual([]);

    // The other session streams a whole reply while this one is idle: its supervisor and session actor step a dozen times.
    await api(running.url, 'POST', `/api/sessions/${otherId}/messages`, { text: 'not yours' });
    while ((await api(running.url, 'GET', `/api/sessions/${otherId}`)).body['status'] !== 'idle') await new Promise((resolve) => setTimeout(resolve, 10));
    expect(xstateRecords()).toEqual([]);
    expect(JSON.stringify(records(stream.events))).not.toContain('not yours');

    // The watched session's own steps do arrive (the same stream works).
    await api(running.url, 'POST', `/api/sessions/${watchedId}/messages`, { text: 'mine' });
    await stream.until(() => xstateRecords().some((record) => record['actor'] === 'session' && record['state'] === 'generating'), 'its own session actor');
    stream.close();
  });

  it('follows a watched session across passivation: the re-activated actor is observed', async () => {
    // A short TTL: the registry's own sweep passivates the idle session.
    running = await startServer({ inspector: { adminToken: TOKEN }, simIntervalMs: 5, sessionTtlMs: 50 });
    const { registry, inspection } = running.server;
    const sessionId = String((await api(running.url, 'POST', '/api/sessions')).body['sessionId']);
    const stream = openStream(`${running.url}/inspector/stream?sessionId=${sessionId}`);
    await stream.ready;
    await stream.until(() => records(stream.events).length > 0, 'the first record');
    const before = registry.peek(sessionId)?.actor;
    expect(before).toBeDefined();
    await stream.until(() => registry.peek(sessionId) === undefined, 'the sweep to passivate the idle session');
    expect(before?.getSnapshot().status).toBe('stopped');
    await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'after passivation' }); // re-activates
    // The session actor starts in `generating`: its first snapshot says so.
    await stream.until(() => records(stream.events).some((record) => record['actor'] === 'session' && record['state'] === 'generating'), 'the new actor generating');
    expect(registry.peek(sessionId)?.actor).not.toBe(before);
    expect(records(stream.events)).toContainEqual(expect.objectContaining({ source: 'domain', event: 'session.started', detail: 'resumed' }));
    expect(inspection?.attachedCount).toBe(1);
    stream.close();
  });

  it('--inspect-redact hides message text, keeping its length', async () => {
    running = await startServer({ inspector: { adminToken: TOKEN, redact: true }, simIntervalMs: 5 });
    const sessionId = String((await api(running.url, 'POST', '/api/sessions')).body['sessionId']);
    const stream = openStream(`${running.url}/inspector/stream?sessionId=${sessionId}`);
    await stream.ready;
    await stream.until(() => records(stream.events).length > 0, 'the first record');
    await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'secret words' });
    await stream.until(() => records(stream.events).some((record) => record['event'] === 'message.completed'), 'completion');
    const seen = records(stream.events);
    expect(JSON.stringify(seen)).not.toContain('secret');
    expect(seen).toContainEqual(expect.objectContaining({ event: 'message.accepted', chars: 12 }));
    stream.close();
  });
});

describe('inspector streams and the node-wide buffered budget', () => {
  it('cuts off an inspector stream whose reader never reads, under its own cap but past the node budget', async () => {
    running = await startServer({
      inspector: { adminToken: TOKEN },
      simChunks: 700,
      messagesPerMinute: 0,
      // ~60 KB of text per recorded chunk event: far under the stream's own cap, past the node's budget.
      maxBufferedBytes: 64 * 1024 * 1024,
      maxBufferedTotalBytes: 24 * 1024 * 1024,
    });
    const sessionId = String((await api(running.url, 'POST', '/api/sessions')).body['sessionId']);
    await new Promise<void>((resolve, reject) => {
      const request = httpRequest(`${running!.url}/inspector/stream?sessionId=${sessionId}`, { headers: auth }, (response) => {
        response.pause();
        response.on('error', () => {});
        resolve();
      });
      request.on('error', reject);
      request.end();
    });
    const hub = running.server.inspection;
    expect(hub?.attachedCount).toBe(1);
    expect((await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'i'.repeat(60_000) })).status).toBe(202);
    const deadline = Date.now() + 30_000;
    // Cut off: the server ends the stream (its observer detaches) while the client still holds the connection, unread.
    while (hub?.attachedCount !== 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(hub?.attachedCount).toBe(0);
    expect(running.server.edge().bufferedBytes).toBe(0);
  }, 60_000);
});
