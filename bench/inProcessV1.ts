import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GATEWAY_BODY, gatewayServerOptions } from './gateway.ts';
import { Child } from './processes.ts';

/** A llm-chat server in this process serving streamed `/v1`, loaded from processes of its own. */
export interface InProcessV1 {
  /**
   * `concurrency` streamed requests in flight for `ms` (bench/httpLoad.ts);
   * resolves with how many completed. Any that failed reject it, unless
   * `failures` is `ignored` (the warm-up: under valgrind the first seconds'
   * store probes run past their deadline and some requests get 503).
   */
  load(ms: number, failures?: 'refused' | 'ignored'): Promise<number>;
  close(): Promise<void>;
}

/**
 * The gateway figures' llm-chat (`--provider openai` at the fast upstream,
 * SQLite store, nothing that would refuse the load) in this process, from
 * the checkout at `root` (its src/), with the fast upstream
 * (bench/fastUpstream.ts) and the load generator (bench/httpLoad.ts) in
 * processes of their own: under valgrind (bench/instructionCount.ts
 * `--scenario v1`) only this process is counted, so the count is the
 * server's alone.
 */
export async function startInProcessV1(options: { root: string; concurrency: number }): Promise<InProcessV1> {
  const { root, concurrency } = options;
  const source = (path: string) => import(pathToFileURL(join(root, 'src', path)).href);
  const { createChatServer } = (await source('server.ts')) as typeof import('../src/server.ts');
  const { openStore } = (await source('infra/openStore.ts')) as typeof import('../src/infra/openStore.ts');
  const { silentLogger } = (await source('infra/silentLogger.ts')) as typeof import('../src/infra/silentLogger.ts');
  const children: Child[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'llm-chat-in-process-v1-'));
  const stopChildren = () => {
    for (const child of children) child.kill();
  };
  // What start-up has opened so far, closed again if a later step fails.
  let store: Awaited<ReturnType<typeof openStore>>['store'] | undefined;
  let server: ReturnType<typeof createChatServer> | undefined;
  try {
    const upstream = new Child('./fastUpstream.ts');
    children.push(upstream);
    const upstreamPort = Number((await upstream.next('ready', 60_000))['port']);
    const loader = new Child('./httpLoad.ts');
    children.push(loader);
    await loader.next('ready', 60_000);
    ({ store } = await openStore({ storeKind: 'sqlite', databaseUrl: '', dataDir }));
    server = createChatServer({ auth: { mode: 'none' }, ...gatewayServerOptions(upstreamPort), store, logger: silentLogger });
    const { port } = await server.listen(0, '127.0.0.1');
    const started = server;
    const url = `http://127.0.0.1:${port}/v1/chat/completions`;
    return {
      async load(ms, failures = 'refused') {
        // Valgrind makes the server ~50× slower: a request may take seconds, so the loader waits long enough.
        const result = await loader.ask({ type: 'load', url, body: GATEWAY_BODY, concurrency, durationMs: ms }, 'loaded', ms + 600_000);
        const errors = result['errors'] as Record<string, number>;
        if (failures === 'refused' && Object.keys(errors).length > 0) throw new Error(`/v1 requests failed: ${JSON.stringify(errors)}`);
        return Number(result['completed']);
      },
      async close() {
        stopChildren();
        await started.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    stopChildren();
    // The server closes the store it was given; a store opened for a server never made is closed here.
    await (server ? server.close() : store?.close())?.catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}
