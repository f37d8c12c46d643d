/**
 * A server under test, in its own process, so its memory and event loop are
 * measured alone. Forked by bench/run.ts: BENCH_KIND is `llm-chat` or
 * `baseline`, BENCH_OPTIONS the server options as JSON. Talks over IPC.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../src/infra/silentLogger.ts';
import { createChatServer } from '../src/server.ts';
import type { ChatServerOptions } from '../src/server.ts';
import { createBaselineServer } from './baselineServer.ts';

const kind = process.env['BENCH_KIND'] ?? 'llm-chat';
const options = JSON.parse(process.env['BENCH_OPTIONS'] ?? '{}') as ChatServerOptions;
const send = (message: unknown) => process.send?.(message);
const gc = (globalThis as { gc?: () => void }).gc;

const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();

let activeSessions = () => 0;
let close: () => Promise<void>;
let port: number;

if (kind === 'baseline') {
  const server = createBaselineServer(options);
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
  port = (server.address() as AddressInfo).port;
  close = () => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
} else {
  const server = createChatServer({ auth: { mode: 'none' }, ...options, logger: silentLogger });
  port = (await server.listen(0, '127.0.0.1')).port;
  activeSessions = () => server.registry.activeCount;
  close = () => server.close();
}

process.on('message', (message: { type: string; gc?: boolean }) => {
  if (message.type === 'stats') {
    if (message.gc && gc) {
      gc();
      gc();
    }
    const memory = process.memoryUsage();
    const cpu = process.cpuUsage();
    send({
      cpuMs: (cpu.user + cpu.system) / 1000,
      type: 'stats',
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      activeSessions: activeSessions(),
      lagP50Ms: lag.percentile(50) / 1e6,
      lagP99Ms: lag.percentile(99) / 1e6,
      lagMaxMs: lag.max / 1e6,
    });
    lag.reset();
  } else if (message.type === 'exit') {
    void close().finally(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', port });
