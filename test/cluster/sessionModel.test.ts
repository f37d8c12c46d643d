import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterServicesAvailable, TestCluster, wsUrlOf } from '../support/cluster.ts';
import { api, WsClient } from '../support/harness.ts';
import type { Json } from '../support/harness.ts';

const available = await clusterServicesAvailable();
const directory = mkdtempSync(join(tmpdir(), 'llm-chat-cluster-models-'));
const modelsFile = join(directory, 'models.json');
writeFileSync(modelsFile, JSON.stringify({ default: 'sim-a', models: [{ name: 'sim-a', provider: 'simulated' }, { name: 'sim-b', provider: 'simulated' }] }));
let cluster: TestCluster;

beforeAll(async () => {
  if (available) cluster = await TestCluster.start(2, { simChunks: 2, simIntervalMs: 10, args: ['--models-file', modelsFile] });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
  rmSync(directory, { recursive: true, force: true });
});

describe.skipIf(!available)('a session’s model, with two nodes', () => {
  it('a message sent through a node that does not own the session answers with the session’s model, unless it names another', async () => {
    const [a, b] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
    const created = await api(a.url, 'POST', '/api/sessions', { model: 'sim-b' });
    expect(created.status).toBe(201);
    const sessionId = String(created.body['sessionId']);
    const onA = await WsClient.open(wsUrlOf(a, `?sessionId=${sessionId}`));
    try {
      await onA.waitFor((frame) => frame.type === 'session');
      // Over REST and over a WebSocket on B, the node that does not run the session.
      expect((await api(b.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'via rest' })).status).toBe(202);
      await onA.waitForCount((frame) => frame.type === 'completed', 1, 10_000);
      const onB = await WsClient.open(wsUrlOf(b, `?sessionId=${sessionId}`));
      try {
        await onB.waitFor((frame) => frame.type === 'session');
        onB.send(JSON.stringify({ type: 'message', text: 'via ws' }));
        await onA.waitForCount((frame) => frame.type === 'completed', 2, 10_000);
        onB.send(JSON.stringify({ type: 'message', text: 'named', model: 'sim-a' }));
        await onA.waitForCount((frame) => frame.type === 'completed', 3, 10_000);
      } finally {
        onB.close();
      }
      expect(onA.frames.filter((frame) => frame.type === 'completed').map((frame) => frame['model'])).toEqual(['sim-b', 'sim-b', 'sim-a']);
      const view = await api(b.url, 'GET', `/api/sessions/${sessionId}`);
      expect((view.body['messages'] as Json[]).filter((message) => message['role'] === 'assistant').map((message) => message['model'])).toEqual(['sim-b', 'sim-b', 'sim-a']);
    } finally {
      onA.close();
    }
  });
});
