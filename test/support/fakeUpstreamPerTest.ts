import OpenAI from 'openai';
import { afterEach, beforeEach } from 'vitest';
import type { ChatServerOptions } from '../../src/server.ts';
import { startFakeUpstream } from './fakeUpstream.ts';
import type { FakeUpstream } from './fakeUpstream.ts';
import { startServer } from './harness.ts';
import type { RunningServer } from './harness.ts';

/**
 * A fresh fake OpenAI upstream for every test of the file, and a server in
 * front of it once the test starts one. After each test: what it gave
 * `closeAfter`, then the server, then the upstream are closed.
 */
export function fakeUpstreamPerTest() {
  let upstream: FakeUpstream | undefined;
  let running: RunningServer | undefined;
  const closers: (() => void)[] = [];
  beforeEach(async () => {
    upstream = await startFakeUpstream();
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) close();
    await running?.close();
    running = undefined;
    await upstream?.close();
  });
  return {
    get upstream(): FakeUpstream {
      if (!upstream) throw new Error('the fake upstream starts before each test');
      return upstream;
    },
    closeAfter(close: () => void): void {
      closers.push(close);
    },
    /** The server with the fake upstream as its model (no retries), and `options` on top. */
    async start(options: ChatServerOptions = {}): Promise<RunningServer> {
      running = await startServer({ llmProvider: 'openai', llmBaseUrl: this.upstream.baseUrl, llmModel: 'fake-model', llmRetries: 0, ...options });
      return running;
    },
  };
}

/** The official SDK pointed at a server's `/v1`. */
export const openAiClient = (base: string, headers: Record<string, string> = {}) =>
  new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0, defaultHeaders: headers });
