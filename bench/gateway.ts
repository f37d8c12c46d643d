/**
 * The gateway scenario: streamed `POST /v1/chat/completions` sent straight
 * to a fast fake OpenAI upstream (bench/fastUpstream.ts), then through
 * llm-chat (default store, `--provider openai` at that upstream), each at
 * the given concurrencies, side by side in one run, and through a bare
 * `node:http` pass-through proxy (bench/bareProxy.ts), the floor of any
 * gateway in Node. Each measurement is preceded by a short warm-up that is
 * not counted.
 */
import { Child, startServer } from './processes.ts';
import type { ServerUnderTest } from './processes.ts';
import { summarize } from './stats.ts';

export interface GatewayConfig {
  concurrencies: number[];
  seconds: number;
}

export interface GatewayMeasure {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  completed: number;
  failed: number;
  errors: Record<string, number>;
  /** CPU of the process answering (llm-chat, or the upstream when sent straight to it) per request. */
  cpuMsPerRequest: number;
}

export interface GatewayResult {
  concurrency: number;
  upstream: GatewayMeasure;
  llmChat: GatewayMeasure;
  /** Through the bare pass-through proxy. */
  bareProxy: GatewayMeasure;
}

/** The streamed request every gateway figure sends. */
export const GATEWAY_BODY = JSON.stringify({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: 'hello' }] });
// llm-chat's CPU per request in successive 1.5 s windows from a fresh start was 1.95, 1.15, 0.97,
// then 0.9-1.1 ms (V8 still compiling its hot path, on threads the CPU figure counts): the
// figures are the server's steady state. The upstream and the bare proxy are warm within 1 s.
export const GATEWAY_WARM_UP_MS = 3000;

/** llm-chat as the gateway figures run it: `--provider openai` at the fast upstream, nothing that would refuse the load. */
export function gatewayServerOptions(upstreamPort: number): Record<string, unknown> {
  return {
    connRatePerIp: 0,
    messagesPerMinute: 0,
    maxSessions: 0,
    shedLagMs: 0,
    llmProvider: 'openai',
    llmBaseUrl: `http://127.0.0.1:${upstreamPort}/v1`,
    llmModel: 'fake-model',
    llmApiKey: 'bench',
  };
}

export async function gatewayScenario(
  config: GatewayConfig,
  context: { log: (line: string) => void; children: Child[]; servers: ServerUnderTest[] },
): Promise<GatewayResult[]> {
  const { log, children, servers } = context;
  const upstream = new Child('./fastUpstream.ts');
  children.push(upstream);
  const upstreamPort = Number((await upstream.next('ready', 30_000))['port']);
  const upstreamCpu = async () => Number((await upstream.ask({ type: 'stats' }, 'stats'))['cpuMs']);
  const proxy = new Child('./bareProxy.ts', { env: { BENCH_UPSTREAM_PORT: String(upstreamPort) } });
  children.push(proxy);
  const proxyPort = Number((await proxy.next('ready', 30_000))['port']);
  const proxyCpu = async () => Number((await proxy.ask({ type: 'stats' }, 'stats'))['cpuMs']);
  const server = await startServer('llm-chat', gatewayServerOptions(upstreamPort));
  servers.push(server);
  const loader = new Child('./httpLoad.ts');
  children.push(loader);
  await loader.next('ready', 30_000);

  const measure = async (url: string, concurrency: number, cpu: () => Promise<number>): Promise<GatewayMeasure> => {
    await loader.ask({ type: 'load', url, body: GATEWAY_BODY, concurrency, durationMs: GATEWAY_WARM_UP_MS }, 'loaded', 60_000);
    const cpuBefore = await cpu();
    const result = await loader.ask({ type: 'load', url, body: GATEWAY_BODY, concurrency, durationMs: config.seconds * 1000 }, 'loaded', config.seconds * 1000 + 60_000);
    const cpuMs = (await cpu()) - cpuBefore;
    const completed = Number(result['completed']);
    const errors = result['errors'] as Record<string, number>;
    const latency = summarize(result['latencies'] as number[]);
    if (Object.keys(errors).length > 0) log(`  errors at ${url}: ${JSON.stringify(errors)}`);
    return {
      requestsPerSecond: completed / (Number(result['elapsedMs']) / 1000),
      p50Ms: latency.p50,
      p99Ms: latency.p99,
      completed,
      failed: Object.values(errors).reduce((sum, count) => sum + count, 0),
      errors,
      cpuMsPerRequest: cpuMs / Math.max(1, completed),
    };
  };

  const results: GatewayResult[] = [];
  try {
    for (const concurrency of config.concurrencies) {
      log(`gateway: ${concurrency} concurrent, straight to the upstream for ${config.seconds} s`);
      const direct = await measure(`http://127.0.0.1:${upstreamPort}/v1/chat/completions`, concurrency, upstreamCpu);
      log(`gateway: ${concurrency} concurrent, through llm-chat for ${config.seconds} s`);
      const through = await measure(`http://127.0.0.1:${server.port}/v1/chat/completions`, concurrency, async () => (await server.stats()).cpuMs);
      log(`gateway: ${concurrency} concurrent, through a bare node:http proxy for ${config.seconds} s`);
      const bare = await measure(`http://127.0.0.1:${proxyPort}/v1/chat/completions`, concurrency, proxyCpu);
      results.push({ concurrency, upstream: direct, llmChat: through, bareProxy: bare });
    }
  } finally {
    await server.stop();
    upstream.send({ type: 'exit' });
    proxy.send({ type: 'exit' });
    loader.kill();
  }
  return results;
}
