/**
 * An HTTP load generator process for the gateway figures, forked by
 * bench/gateway.ts. On `{type:'load'}` it keeps `concurrency` streamed chat
 * completion requests in flight on keep-alive connections for `durationMs`,
 * reads every response to its end, and reports how many completed, their
 * latency (request sent → last byte) and the failures by cause. A response
 * counts only when it is a 200 ending in `data: [DONE]`.
 */
import { Agent, request } from 'node:http';
import { Reservoir } from './stats.ts';

interface LoadCommand {
  type: 'load';
  url: string;
  body: string;
  concurrency: number;
  durationMs: number;
}

const send = (message: unknown) => process.send?.(message);
const now = () => performance.now();

function once(agent: Agent, url: URL, body: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const outgoing = request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (response) => {
        let tail = '';
        response.setEncoding('utf8');
        response.on('data', (text: string) => {
          tail = (tail + text).slice(-32);
        });
        response.on('end', () => {
          if (response.statusCode !== 200) resolve(`HTTP ${response.statusCode}`);
          else resolve(tail.endsWith('data: [DONE]\n\n') ? undefined : 'no [DONE]');
        });
        response.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      },
    );
    outgoing.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    outgoing.setTimeout(30_000, () => outgoing.destroy(new Error('timeout')));
    outgoing.end(body);
  });
}

async function load(command: LoadCommand): Promise<void> {
  const url = new URL(command.url);
  // Bounded: one connection per worker, kept alive across its requests.
  const agent = new Agent({ keepAlive: true, maxSockets: command.concurrency });
  const latencies = new Reservoir();
  const errors: Record<string, number> = {};
  let completed = 0;
  const started = now();
  const until = started + command.durationMs;
  const worker = async () => {
    while (now() < until) {
      const sentAt = now();
      const failure = await once(agent, url, command.body);
      if (failure === undefined) {
        completed += 1;
        latencies.add(now() - sentAt);
      } else errors[failure] = (errors[failure] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: command.concurrency }, worker));
  const elapsedMs = now() - started;
  agent.destroy();
  send({ type: 'loaded', completed, errors, elapsedMs, latencies: latencies.values });
}

process.on('message', (command: LoadCommand) => {
  if (command.type === 'load') load(command).catch((error: unknown) => send({ type: 'error', message: String(error) }));
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
