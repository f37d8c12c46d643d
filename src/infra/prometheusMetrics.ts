import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ChatEvent } from '../domain/events.ts';
import type { Clock, EventBus, Unsubscribe } from '../domain/ports.ts';
import { createReplyTimings } from './replyTimings.ts';
import type { StoreOperation } from './trackedStore.ts';

export type Transport = 'ws' | 'sse' | 'http';

/** Codes that mean "refused to protect the node", whatever issues add more of them. */
const REJECTION_CODES: ReadonlySet<string> = new Set(['busy', 'overloaded', 'rate_limited']);

export interface MetricsSources {
  bus: EventBus;
  clock: Clock;
  /** Open connections now, per transport. */
  connections(): { ws: number; sse: number };
  /** Admission slots held and unsent bytes node-wide, now (leaks and slow consumers show here). */
  edge?(): { slots: number; bufferedBytes: number };
  /** Sessions with a live actor on this node now. */
  liveSessions(): number;
  /** More metrics in the same registry (e.g. the cluster's, see clusterMetrics.ts). */
  extend?: (register: Registry) => void;
}

export interface ChatMetrics {
  readonly contentType: string;
  /** The exposition text: this server's metrics and the process's. */
  render(): Promise<string>;
  slowConsumer(transport: Transport): void;
  /** A request or frame was answered with this error code. */
  clientError(transport: Transport, code: string): void;
  passivated(count: number): void;
  storeError(operation: StoreOperation): void;
  /** A finished reply's tokens, by the key's name (never its secret or id) and the model that answered. */
  tokens(keyName: string, model: string, usage: { inputTokens: number; outputTokens: number }): void;
  close(): void;
}

// Process metrics (CPU, memory, GC, event-loop lag) are per process, not per
// server: collected once, however many servers a test suite starts.
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * Prometheus metrics fed by the domain events on the bus and a few transport
 * hooks. Labels are bounded sets (transport, outcome, reason, code, operation):
 * never a session or message id.
 */
export function createPrometheusMetrics(sources: MetricsSources): ChatMetrics {
  const register = new Registry();
  const registers = [register];
  sources.extend?.(register);

  new Gauge({
    name: 'llm_chat_connections',
    help: 'Open client connections by transport.',
    labelNames: ['transport'] as const,
    registers,
    collect() {
      const open = sources.connections();
      this.set({ transport: 'ws' }, open.ws);
      this.set({ transport: 'sse' }, open.sse);
    },
  });
  const edge = sources.edge;
  if (edge) {
    new Gauge({
      name: 'llm_chat_connection_slots',
      help: 'Connection slots held by admission control (WebSocket + SSE, handshakes in progress included).',
      registers,
      collect() {
        this.set(edge().slots);
      },
    });
    new Gauge({
      name: 'llm_chat_buffered_bytes',
      help: 'Unsent bytes held for WebSocket and SSE clients, node-wide, as last reported (capped by --max-buffered-total-bytes).',
      registers,
      collect() {
        this.set(edge().bufferedBytes);
      },
    });
  }
  new Gauge({
    name: 'llm_chat_sessions_live',
    help: 'Sessions with a live actor on this node.',
    registers,
    collect() {
      this.set(sources.liveSessions());
    },
  });
  const passivated = new Counter({ name: 'llm_chat_sessions_passivated_total', help: 'Idle session actors passivated (history stays in the store).', registers });
  const started = new Counter({
    name: 'llm_chat_sessions_started_total',
    help: 'Session actors started: new sessions (resumed="false") or re-activated ones (resumed="true").',
    labelNames: ['resumed'] as const,
    registers,
  });
  const stopped = new Counter({ name: 'llm_chat_sessions_stopped_total', help: 'Sessions stopped, by reason.', labelNames: ['reason'] as const, registers });
  const accepted = new Counter({ name: 'llm_chat_messages_accepted_total', help: 'User messages accepted.', registers });
  const messages = new Counter({
    name: 'llm_chat_messages_total',
    help: 'Replies ended, by outcome: complete, cancelled (also queued ones dropped), failed, interrupted.',
    labelNames: ['outcome'] as const,
    registers,
  });
  // Chunks are counted in a plain number and handed to the counter when it is
  // collected: an inc() per chunk was a measured share of the bus's cost.
  let chunksSinceCollect = 0;
  new Counter({
    name: 'llm_chat_chunks_sent_total',
    help: 'Reply chunks streamed (once per chunk, whatever the number of watchers).',
    registers,
    collect() {
      this.inc(chunksSinceCollect);
      chunksSinceCollect = 0;
    },
  });
  const firstChunk = new Histogram({
    name: 'llm_chat_time_to_first_chunk_seconds',
    help: "From a message's acceptance to its reply's first chunk, queueing included.",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers,
  });
  const duration = new Histogram({
    name: 'llm_chat_generation_duration_seconds',
    help: 'From the start of a reply to its end, by outcome.',
    labelNames: ['outcome'] as const,
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120],
    registers,
  });
  const tokens = new Counter({
    name: 'llm_chat_tokens_total',
    help: 'Tokens of finished replies, by API key name (empty without keys), model and direction (input, output).',
    labelNames: ['key', 'model', 'direction'] as const,
    registers,
  });
  const restarts = new Counter({ name: 'llm_chat_supervisor_restarts_total', help: 'Session actors restarted by their supervisor.', registers });
  const slow = new Counter({
    name: 'llm_chat_backpressure_disconnects_total',
    help: 'Connections closed because the client read too slowly.',
    labelNames: ['transport'] as const,
    registers,
  });
  const rejections = new Counter({
    name: 'llm_chat_rate_limit_rejections_total',
    help: 'Requests refused to protect the node (busy queue, overloaded, rate limited), by code.',
    labelNames: ['code'] as const,
    registers,
  });
  const clientErrors = new Counter({
    name: 'llm_chat_client_errors_total',
    help: 'Errors returned to clients, by transport and code.',
    labelNames: ['transport', 'code'] as const,
    registers,
  });
  const storeErrors = new Counter({ name: 'llm_chat_store_errors_total', help: 'Failed store operations.', labelNames: ['operation'] as const, registers });
  const providerErrors = new Counter({ name: 'llm_chat_provider_errors_total', help: 'Replies failed by the model provider.', registers });

  for (const outcome of ['complete', 'cancelled', 'failed', 'interrupted']) messages.inc({ outcome }, 0);
  for (const transport of ['ws', 'sse']) slow.inc({ transport }, 0);

  const timings = createReplyTimings(sources.clock, {
    firstChunk: (seconds) => firstChunk.observe(seconds),
    finished: (seconds, outcome) => duration.observe({ outcome }, seconds),
  });

  const count = (event: ChatEvent) => {
    switch (event.type) {
      case 'chunk':
        chunksSinceCollect += 1;
        break;
      case 'message.accepted':
        accepted.inc();
        break;
      case 'session.started':
        started.inc({ resumed: String(event.resumed) });
        break;
      case 'session.stopped':
        stopped.inc({ reason: event.reason });
        break;
      case 'session.restarted':
        restarts.inc();
        break;
      case 'message.completed':
        // (its tokens are counted by the ledger, which knows the key: see tokens())
        messages.inc({ outcome: 'complete' });
        break;
      case 'message.cancelled':
        messages.inc({ outcome: 'cancelled' });
        break;
      case 'message.interrupted':
        messages.inc({ outcome: 'interrupted' });
        break;
      case 'message.failed':
        messages.inc({ outcome: 'failed' });
        if (event.code === 'provider_error') providerErrors.inc();
        break;
      default:
        break;
    }
    timings.observe(event);
  };
  const unsubscribe: Unsubscribe = sources.bus.subscribeAll(count);

  return {
    contentType: register.contentType,
    async render() {
      return (await register.metrics()) + (await processMetrics().metrics());
    },
    slowConsumer(transport) {
      slow.inc({ transport });
    },
    clientError(transport, code) {
      clientErrors.inc({ transport, code });
      if (REJECTION_CODES.has(code)) rejections.inc({ code });
    },
    passivated(howMany) {
      passivated.inc(howMany);
    },
    storeError(operation) {
      storeErrors.inc({ operation });
    },
    tokens(keyName, model, usage) {
      if (usage.inputTokens > 0) tokens.inc({ key: keyName, model, direction: 'input' }, usage.inputTokens);
      if (usage.outputTokens > 0) tokens.inc({ key: keyName, model, direction: 'output' }, usage.outputTokens);
    },
    close() {
      unsubscribe();
    },
  };
}
