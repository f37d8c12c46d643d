import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startChildServer } from './support/childServer.ts';
import type { ChildServer } from './support/childServer.ts';
import { WsClient } from './support/harness.ts';
import { halfOpenPeer } from './support/hostilePeers.ts';

let child: ChildServer | undefined;
const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
  if (child && child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL');
  child = undefined;
});

/** An SSE request whose response is never read. */
function neverReadingSse(url: string): Promise<void> {
  return new Promise((resolve) => {
    const request = httpRequest(url, (response) => {
      response.pause();
      resolve();
    });
    request.on('error', () => {});
    request.end();
  });
}

async function timedStop(server: ChildServer, signal: NodeJS.Signals) {
  const started = Date.now();
  const exit = await server.stop(signal);
  return { ...exit, ms: Date.now() - started };
}

describe('shutdown keeps its deadline', () => {
  it('exits within --shutdown-deadline-ms + 1 s although WebSocket peers never answer the close handshake (was 30 s)', async () => {
    child = await startChildServer(['--shutdown-deadline-ms', '1000', '--store', 'memory', '--log-level', 'debug']);
    const port = Number(new URL(child.url).port);
    // One peer reads but never answers anything; one never even reads; an SSE reader that never reads.
    sockets.push(await halfOpenPeer(port), await halfOpenPeer(port, '/ws', { paused: true }));
    const { client, sessionId } = await WsClient.session(`${child.url.replace('http', 'ws')}/ws`);
    client.close();
    await neverReadingSse(`${child.url}/sse/${sessionId}`);
    const { code, ms } = await timedStop(child, 'SIGTERM');
    expect(code).toBe(0);
    expect(ms).toBeLessThan(2000);
    expect(child.log()).toContain('"msg":"shut down"');
  });

  it('a second signal exits at once, while a reply is still in flight', async () => {
    child = await startChildServer(['--shutdown-deadline-ms', '10000', '--sim-interval-ms', '2000', '--store', 'memory']);
    const { client } = await WsClient.session(`${child.url.replace('http', 'ws')}/ws`);
    client.send('take your time');
    await client.waitFor((frame) => frame.type === 'accepted');
    const first = Date.now();
    child.child.kill('SIGTERM');
    await client.waitFor((frame) => frame.type === 'shutdown');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const { code, ms } = await timedStop(child, 'SIGTERM');
    expect(code).toBe(128 + 15);
    expect(ms).toBeLessThan(500);
    expect(Date.now() - first).toBeLessThan(2000); // nowhere near the 10 s deadline
    expect(child.log()).toContain('second signal: exiting at once');
    client.close();
  });
});
