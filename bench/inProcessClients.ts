import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { openStore } from '../src/infra/openStore.ts';
import { silentLogger } from '../src/infra/silentLogger.ts';
import { createChatServer } from '../src/server.ts';

/**
 * `count` real `ws` clients of a server in this process, each open once its
 * `session` frame came; every later frame goes to `onFrame` as text. For the
 * in-process benches (allocations.ts, liveAllocations.ts, commitCost.ts).
 */
export function openClients(port: number, count: number, onFrame: (text: string) => void): Promise<WebSocket[]> {
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
          let open = false;
          socket.on('message', (data) => {
            if (open) onFrame(data.toString());
            else {
              open = true;
              resolve(socket);
            }
          });
          socket.on('error', reject);
        }),
    ),
  );
}

/** A llm-chat server in this process with `sessions` clients, and a way to have every client ask once and wait for every reply. */
export interface InProcessBurst {
  /** Each client sends one message; resolves once every reply's last chunk came. */
  round(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The in-process benches' server (no keys, no limits, no shedding: the load
 * measured is all allowed) on `storeKind` in a temporary directory removed
 * at `close`, the simulated model at `simIntervalMs` between chunks, and
 * `sessions` real `ws` clients of it.
 */
export async function startInProcessBurst(options: { sessions: number; simIntervalMs: number; storeKind: 'sqlite' | 'memory' }): Promise<InProcessBurst> {
  const dataDir = mkdtempSync(join(tmpdir(), 'llm-chat-in-process-'));
  const { store } = await openStore({ storeKind: options.storeKind, databaseUrl: '', dataDir });
  const server = createChatServer({
    auth: { mode: 'none' },
    connRatePerIp: 0,
    messagesPerMinute: 0,
    maxSessions: 0,
    shedLagMs: 0,
    simIntervalMs: options.simIntervalMs,
    store,
    logger: silentLogger,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  let done = 0;
  let finish = () => {};
  const removeData = () => rmSync(dataDir, { recursive: true, force: true });
  let clients: WebSocket[];
  try {
    clients = await openClients(port, options.sessions, (text) => {
      if (text.startsWith('{"type":"chunk"') && text.includes('"is_last":true') && ++done === options.sessions) finish();
    });
  } catch (error) {
    // A client that could not connect: the server and its files go too.
    await server.close();
    removeData();
    throw error;
  }
  return {
    round() {
      done = 0;
      const all = new Promise<void>((resolve) => (finish = resolve));
      for (const socket of clients) socket.send('bench');
      return all;
    },
    async close() {
      for (const socket of clients) socket.terminate();
      await server.close();
      removeData();
    },
  };
}
