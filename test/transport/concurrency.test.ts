import { afterEach, describe, expect, it } from 'vitest';
import { createSimulatedProvider } from '../../src/infra/simulatedProvider.ts';
import { systemClock } from '../../src/infra/systemClock.ts';
import { startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';
import { failingOn } from '../support/scriptedProvider.ts';

let running: RunningServer | undefined;
const clients: WsClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await running?.close();
  running = undefined;
});

const isChunk = (frame: { type?: string }) => frame.type === 'chunk';

describe('concurrency and supervision over the wire', () => {
  it('500 sessions streaming at once all finish in well under twice one stream', async () => {
    const intervalMs = 400; // the seed schedule: one stream is 5 × 400 ms = 2 s
    running = await startServer({ simIntervalMs: intervalMs, connRatePerIp: 0 });
    const opened = await Promise.all(Array.from({ length: 500 }, () => WsClient.session(running!.wsUrl)));
    clients.push(...opened.map(({ client }) => client));
    const started = performance.now();
    for (const { client } of opened) client.send('together');
    await Promise.all(opened.map(({ client }) => client.waitForCount((frame) => frame['is_last'] === true, 1, 10_000)));
    const elapsed = performance.now() - started;
    for (const { client, sessionId } of opened) {
      const chunks = client.frames.filter(isChunk);
      expect(chunks.map((frame) => frame['seq'])).toEqual([1, 2, 3, 4, 5]);
      expect(new Set(chunks.map((frame) => frame['sessionId']))).toEqual(new Set([sessionId]));
    }
    expect(elapsed).toBeLessThan(2 * 5 * intervalMs);
  });

  it('a provider that throws mid-stream: error frame, restarted session answers next, neighbour untouched', async () => {
    const provider = failingOn(createSimulatedProvider({ chunks: 5, intervalMs: 10, clock: systemClock }), 'explode', 2);
    running = await startServer({ provider, restartBackoffMs: 5 });
    const victim = await WsClient.session(running.wsUrl);
    const neighbour = await WsClient.session(running.wsUrl);
    clients.push(victim.client, neighbour.client);
    neighbour.client.send('calm');
    victim.client.send('explode please');
    const error = await victim.client.waitFor((frame) => frame.type === 'error');
    expect(error).toMatchObject({ code: 'provider_error', sessionId: victim.sessionId, message: 'The model failed while generating this reply.' });
    expect(JSON.stringify(error)).not.toContain('exploded'); // internals never leak
    expect(victim.client.frames.filter(isChunk)).toHaveLength(2);
    await victim.client.waitFor((frame) => frame.type === 'restarted');
    victim.client.send('are you back?');
    const chunks = await victim.client.waitForCount(isChunk, 7);
    expect(chunks.slice(2).map((frame) => frame['chunk'])).toEqual([1, 2, 3, 4, 5].map((n) => `chunk ${n}: are you back?`));
    const calm = await neighbour.client.waitForCount(isChunk, 5);
    expect(calm.map((frame) => frame['chunk'])).toEqual([1, 2, 3, 4, 5].map((n) => `chunk ${n}: calm`));
    expect(neighbour.client.frames.some((frame) => frame.type === 'error' || frame.type === 'restarted')).toBe(false);
  });
});
