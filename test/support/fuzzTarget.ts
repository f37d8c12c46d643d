/**
 * A server in a process of its own, run with --expose-gc, for the fuzz tests
 * and the abuse bench: the heap they measure is the server's alone, after a
 * real collection. Commands over IPC: `heap` (collect, then report
 * heapUsed), `edge` (slots, sockets, streams, buffered bytes), `close`.
 */
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { createChatServer } from '../../src/server.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const collect = gc;

const options = JSON.parse(process.argv[2] ?? '{}') as Record<string, number>;
const server = createChatServer({
  // Without API keys unless the options ask (as the harness): the fuzzing is about the input rules.
  auth: { mode: 'none' },
  logger: silentLogger,
  simIntervalMs: 0,
  simChunks: 1,
  messagesPerMinute: 0,
  connRatePerIp: 0,
  shedLagMs: 0,
  ...options,
});
const { url } = await server.listen(0, '127.0.0.1');

process.on('message', (message: { type: string }) => {
  if (message.type === 'heap') {
    // Several passes: weak references and finalizers free more on the next one.
    for (let pass = 0; pass < 4; pass += 1) collect();
    process.send?.({ type: 'heap', heapUsed: process.memoryUsage().heapUsed });
  } else if (message.type === 'edge') {
    process.send?.({ type: 'edge', ...server.edge(), sessions: server.registry.activeCount });
  } else if (message.type === 'close') {
    void server.close().then(() => process.exit(0));
  }
});
process.send?.({ type: 'ready', url });
