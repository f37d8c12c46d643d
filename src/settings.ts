import type { LogLevel } from './infra/pinoLogger.ts';
import type { ModelsConfig } from './modelsFile.ts';

/**
 * Every setting llm-chat has: its type (`Config`) and its row in the table
 * that the parser (config.ts), `--help` and the README's options table follow.
 */

export interface Config {
  port: number;
  host: string;
  logLevel: LogLevel;
  simChunks: number;
  simIntervalMs: number;
  queueLimit: number;
  sessionTtlMs: number;
  restartIntensity: number;
  restartPeriodMs: number;
  restartBackoffMs: number;
  maxFrameBytes: number;
  maxBodyBytes: number;
  maxBufferedBytes: number;
  maxBufferedTotalBytes: number;
  wsPingMs: number;
  replayLogSize: number;
  replayLogBytes: number;
  heartbeatMs: number;
  maxSessions: number;
  maxConnections: number;
  connRatePerIp: number;
  messagesPerMinute: number;
  shedLagMs: number;
  llmProvider: ProviderKind;
  llmBaseUrl: string;
  llmApiKey: string;
  llmModel: string;
  llmSystemPrompt: string;
  llmTemperature: number | undefined;
  llmMaxTokens: number;
  firstTokenTimeoutMs: number;
  stallTimeoutMs: number;
  llmRetries: number;
  retryBaseMs: number;
  breakerFailures: number;
  breakerFailureRate: number;
  breakerWindow: number;
  breakerCooldownMs: number;
  historyBudgetTokens: number;
  chunkFlushMs: number;
  chunkMaxChars: number;
  shutdownDeadlineMs: number;
  logFormat: 'auto' | 'json' | 'pretty';
  metrics: boolean;
  inspector: boolean;
  adminToken: string;
  inspectRedact: boolean;
  inspectStately: string;
  storeKind: StoreKind;
  databaseUrl: string;
  dataDir: string;
  flushIntervalMs: number;
  redisUrl: string;
  workers: number;
  leaseMs: number;
  nodeId: string;
  storeTimeoutMs: number;
  auth: 'keys' | 'none';
  allowedOrigins: string;
  trustProxy: string;
  connBurstPerIp: number;
  keyMessagesPerMinute: number;
  keySessionsPerMinute: number;
  keyLiveSessions: number;
  keyConnections: number;
  keyTokensPerDay: number;
  retentionDays: number;
  maxV1BodyBytes: number;
  modelsFile: string;
  /** The models of `--models-file`, read and checked at start-up (absent: the single model of the flags). */
  models?: ModelsConfig;
}

/** `auto`: PostgreSQL when the database URL is a postgres:// one, else SQLite. */
export type StoreKind = 'auto' | 'sqlite' | 'postgres' | 'memory';

export type ProviderKind = 'simulated' | 'openai';
export const PROVIDERS: readonly ProviderKind[] = ['simulated', 'openai'];

export type Kind = 'int' | 'string' | 'level' | 'provider' | 'decimal' | 'boolean' | 'choice';

export interface Setting {
  key: keyof Config;
  flag: string;
  env: string;
  kind: Kind;
  /** undefined: unset unless given. */
  default: number | string | boolean | undefined;
  min?: number;
  max?: number;
  /** For `choice`: the values allowed. */
  choices?: readonly string[];
  help: string;
}

export const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

export const SETTINGS: readonly Setting[] = [
  { key: 'port', flag: 'port', env: 'PORT', kind: 'int', default: 8080, min: 0, help: 'TCP port to listen on (0 picks a free one)' },
  { key: 'host', flag: 'host', env: 'HOST', kind: 'string', default: '0.0.0.0', help: 'address to listen on' },
  { key: 'logLevel', flag: 'log-level', env: 'LOG_LEVEL', kind: 'level', default: 'info', help: 'debug, info, warn, error or silent' },
  { key: 'simChunks', flag: 'sim-chunks', env: 'SIM_CHUNKS', kind: 'int', default: 5, min: 1, help: 'simulated model: chunks per reply' },
  { key: 'simIntervalMs', flag: 'sim-interval-ms', env: 'SIM_INTERVAL_MS', kind: 'int', default: 400, min: 0, help: 'simulated model: ms before each chunk' },
  { key: 'queueLimit', flag: 'queue-limit', env: 'QUEUE_LIMIT', kind: 'int', default: 8, min: 0, help: 'messages that may wait while a reply streams (beyond: busy)' },
  { key: 'sessionTtlMs', flag: 'session-ttl-ms', env: 'SESSION_TTL_MS', kind: 'int', default: 600_000, min: 1, help: 'passivate a session actor idle this long' },
  { key: 'restartIntensity', flag: 'restart-intensity', env: 'RESTART_INTENSITY', kind: 'int', default: 5, min: 0, help: 'restarts allowed per session within the period' },
  { key: 'restartPeriodMs', flag: 'restart-period-ms', env: 'RESTART_PERIOD_MS', kind: 'int', default: 10_000, min: 1, help: 'the restart-intensity period' },
  { key: 'restartBackoffMs', flag: 'restart-backoff-ms', env: 'RESTART_BACKOFF_MS', kind: 'int', default: 50, min: 0, help: 'first restart delay; doubles per restart, at most 2 s' },
  { key: 'maxFrameBytes', flag: 'max-frame-bytes', env: 'MAX_FRAME_BYTES', kind: 'int', default: 65_536, min: 1, help: 'largest WebSocket frame from a client (beyond: close 1009)' },
  { key: 'maxBodyBytes', flag: 'max-body-bytes', env: 'MAX_BODY_BYTES', kind: 'int', default: 65_536, min: 1, help: 'largest REST JSON body (beyond: 413)' },
  { key: 'maxBufferedBytes', flag: 'max-buffered-bytes', env: 'MAX_BUFFERED_BYTES', kind: 'int', default: 1_048_576, min: 1, help: 'unsent bytes per connection before it is closed as too slow' },
  { key: 'maxBufferedTotalBytes', flag: 'max-buffered-total-bytes', env: 'MAX_BUFFERED_TOTAL_BYTES', kind: 'int', default: 268_435_456, min: 1, help: 'unsent bytes over all connections; past it the connections holding the most are closed first (1013)' },
  { key: 'wsPingMs', flag: 'ws-ping-ms', env: 'WS_PING_MS', kind: 'int', default: 30_000, min: 0, help: 'WebSocket ping interval; a peer that neither answers nor takes or sends bytes until the next ping is dropped (0: never ping)' },
  { key: 'replayLogSize', flag: 'replay-log-size', env: 'REPLAY_LOG_SIZE', kind: 'int', default: 1000, min: 0, help: 'recent chunks kept per session for resume' },
  { key: 'replayLogBytes', flag: 'replay-log-bytes', env: 'REPLAY_LOG_BYTES', kind: 'int', default: 1_048_576, min: 0, help: 'and at most this many bytes of their text per session (2 bytes a UTF-16 unit; the newest chunk always kept)' },
  { key: 'heartbeatMs', flag: 'heartbeat-ms', env: 'HEARTBEAT_MS', kind: 'int', default: 15_000, min: 1, help: 'SSE comment heartbeat interval' },
  { key: 'maxSessions', flag: 'max-sessions', env: 'MAX_SESSIONS', kind: 'int', default: 100_000, min: 0, help: 'most active sessions on this node (with Redis: across the cluster, counted from heartbeats), 0 for no limit (beyond: overloaded)' },
  { key: 'maxConnections', flag: 'max-connections', env: 'MAX_CONNECTIONS', kind: 'int', default: 0, min: 0, help: 'open WS+SSE connections, 0 for the open-file limit less 2% (beyond: overloaded)' },
  { key: 'connRatePerIp', flag: 'conn-rate-per-ip', env: 'CONN_RATE_PER_IP', kind: 'int', default: 50, min: 0, help: 'per client IP per second: new connections (--auth none) or requests without a valid key (--auth keys), 0 for no limit (beyond it and the burst: rate_limited)' },
  { key: 'messagesPerMinute', flag: 'messages-per-minute', env: 'MESSAGES_PER_MINUTE', kind: 'int', default: 60, min: 0, help: 'messages per session per minute, 0 for no limit (beyond: rate_limited)' },
  { key: 'shedLagMs', flag: 'shed-lag-ms', env: 'SHED_LAG_MS', kind: 'int', default: 500, min: 0, help: 'refuse new work while event-loop p99 delay exceeds this, 0 to never shed' },
  { key: 'llmProvider', flag: 'provider', env: 'LLM_PROVIDER', kind: 'provider', default: 'simulated', help: 'the model: simulated, or openai (any OpenAI-compatible server)' },
  { key: 'llmBaseUrl', flag: 'base-url', env: 'LLM_BASE_URL', kind: 'string', default: 'https://api.openai.com/v1', help: 'OpenAI-compatible API base URL (Ollama: http://localhost:11434/v1)' },
  { key: 'llmApiKey', flag: 'api-key', env: 'LLM_API_KEY', kind: 'string', default: '', help: 'API key for the model server (prefer the env variable: flags show in ps)' },
  { key: 'llmModel', flag: 'model', env: 'LLM_MODEL', kind: 'string', default: '', help: 'model name; required with --provider openai' },
  { key: 'llmSystemPrompt', flag: 'system-prompt', env: 'LLM_SYSTEM_PROMPT', kind: 'string', default: '', help: 'system prompt sent first with every request (empty: none)' },
  { key: 'llmTemperature', flag: 'temperature', env: 'LLM_TEMPERATURE', kind: 'decimal', default: undefined, min: 0, max: 2, help: "sampling temperature, 0 to 2 (unset: the server's default)" },
  { key: 'llmMaxTokens', flag: 'max-tokens', env: 'LLM_MAX_TOKENS', kind: 'int', default: 0, min: 0, help: "most tokens per reply (0: the server's default)" },
  { key: 'firstTokenTimeoutMs', flag: 'first-token-timeout-ms', env: 'LLM_FIRST_TOKEN_TIMEOUT_MS', kind: 'int', default: 30_000, min: 1, help: 'no first token within this long: upstream_timeout (per attempt)' },
  { key: 'stallTimeoutMs', flag: 'stall-timeout-ms', env: 'LLM_STALL_TIMEOUT_MS', kind: 'int', default: 60_000, min: 1, help: 'no next token within this long: upstream_timeout' },
  { key: 'llmRetries', flag: 'retries', env: 'LLM_RETRIES', kind: 'int', default: 2, min: 0, help: 'retries of a failed model call, only before its first token' },
  { key: 'retryBaseMs', flag: 'retry-base-ms', env: 'LLM_RETRY_BASE_MS', kind: 'int', default: 250, min: 0, help: 'first retry delay; doubles per retry (at most 10 s), with jitter' },
  { key: 'breakerFailures', flag: 'breaker-failures', env: 'LLM_BREAKER_FAILURES', kind: 'int', default: 5, min: 0, help: 'circuit breaker opens after this many failures in a row (0: never)' },
  { key: 'breakerFailureRate', flag: 'breaker-failure-rate', env: 'LLM_BREAKER_FAILURE_RATE', kind: 'int', default: 50, min: 0, max: 100, help: 'or when this % of the last --breaker-window calls failed (0: never)' },
  { key: 'breakerWindow', flag: 'breaker-window', env: 'LLM_BREAKER_WINDOW', kind: 'int', default: 20, min: 1, help: 'calls the failure rate is measured over' },
  { key: 'breakerCooldownMs', flag: 'breaker-cooldown-ms', env: 'LLM_BREAKER_COOLDOWN_MS', kind: 'int', default: 30_000, min: 1, help: 'time open before one probe call is let through' },
  { key: 'historyBudgetTokens', flag: 'history-budget-tokens', env: 'LLM_HISTORY_BUDGET_TOKENS', kind: 'int', default: 3_000, min: 1, help: 'estimated tokens of context per request; oldest turns dropped first' },
  { key: 'chunkFlushMs', flag: 'chunk-flush-ms', env: 'LLM_CHUNK_FLUSH_MS', kind: 'int', default: 16, min: 0, help: 'model tokens are joined into one chunk for at most this long' },
  { key: 'chunkMaxChars', flag: 'chunk-max-chars', env: 'LLM_CHUNK_MAX_CHARS', kind: 'int', default: 256, min: 1, help: 'a joined chunk goes out at once at this many characters' },
  { key: 'shutdownDeadlineMs', flag: 'shutdown-deadline-ms', env: 'SHUTDOWN_DEADLINE_MS', kind: 'int', default: 10_000, min: 0, help: 'on SIGTERM/SIGINT, how long replies in flight may finish before they are interrupted' },
  { key: 'logFormat', flag: 'log-format', env: 'LOG_FORMAT', kind: 'choice', choices: ['auto', 'json', 'pretty'], default: 'auto', help: 'auto (pretty on a terminal, else JSON lines), json or pretty' },
  { key: 'metrics', flag: 'metrics', env: 'METRICS', kind: 'boolean', default: true, help: 'serve Prometheus metrics at GET /metrics' },
  { key: 'inspector', flag: 'inspector', env: 'INSPECTOR', kind: 'boolean', default: true, help: 'serve the state-machine inspector at /inspector (always behind the admin token)' },
  { key: 'adminToken', flag: 'admin-token', env: 'ADMIN_TOKEN', kind: 'string', default: '', help: 'token for /inspector and /admin/keys (at least 16 characters; never an API key); empty: one is generated and printed at start-up' },
  { key: 'inspectRedact', flag: 'inspect-redact', env: 'INSPECT_REDACT', kind: 'boolean', default: false, help: 'hide message content from the inspector' },
  { key: 'inspectStately', flag: 'inspect-stately', env: 'INSPECT_STATELY', kind: 'string', default: '', help: "also forward every session's inspection events to a @statelyai/inspect WebSocket relay at this ws:// URL (costly)" },
  { key: 'storeKind', flag: 'store', env: 'STORE', kind: 'choice', default: 'auto', choices: ['auto', 'sqlite', 'postgres', 'memory'], help: 'where history is kept: sqlite, postgres, memory (auto: postgres for a postgres:// DATABASE_URL, else sqlite)' },
  { key: 'databaseUrl', flag: 'database-url', env: 'DATABASE_URL', kind: 'string', default: '', help: 'postgres://user:password@host:5432/db, or a SQLite file path (default <data-dir>/llm-chat.sqlite)' },
  { key: 'dataDir', flag: 'data-dir', env: 'DATA_DIR', kind: 'string', default: './data', help: 'directory of the SQLite database file' },
  { key: 'maxV1BodyBytes', flag: 'max-v1-body-bytes', env: 'MAX_V1_BODY_BYTES', kind: 'int', default: 16 * 1024 * 1024, min: 1, help: 'largest /v1 request body (images and audio come inline; beyond: 413)' },
  { key: 'modelsFile', flag: 'models-file', env: 'MODELS_FILE', kind: 'string', default: '', help: 'JSON file of the models clients may name, with fallbacks (empty: the one model of --provider/--model)' },
  { key: 'flushIntervalMs', flag: 'flush-interval-ms', env: 'FLUSH_INTERVAL_MS', kind: 'int', default: 500, min: 10, help: 'how often a streaming reply is written to the store (what a crash can lose)' },
  { key: 'redisUrl', flag: 'redis-url', env: 'REDIS_URL', kind: 'string', default: '', help: 'redis://host:6379: many nodes share the bus, session ownership and the limits through it (empty: one node, all in process); a node on another store than the other nodes exits with code 2' },
  { key: 'workers', flag: 'workers', env: 'WORKERS', kind: 'int', default: 1, min: 0, help: 'worker processes sharing the port (node:cluster; each accepts from the shared socket, NODE_CLUSTER_SCHED_POLICY=rr for round-robin through the primary); 0 = one per core; more than 1 needs --redis-url, else start-up exits with code 2' },
  { key: 'leaseMs', flag: 'lease-ms', env: 'LEASE_MS', kind: 'int', default: 5000, min: 200, help: "with --redis-url: a session owner's lease; a dead node's sessions move after about this long" },
  { key: 'nodeId', flag: 'node-id', env: 'NODE_ID', kind: 'string', default: '', help: 'with --redis-url: this node\'s name in the cluster (default host-pid-random; letters, digits, . _ -)' },
  { key: 'storeTimeoutMs', flag: 'store-timeout-ms', env: 'STORE_TIMEOUT_MS', kind: 'int', default: 5000, min: 100, help: 'PostgreSQL: a query or connection with no answer in this long fails (store_unavailable); the longest a message waits for its acknowledgement' },
  { key: 'auth', flag: 'auth', env: 'AUTH', kind: 'choice', choices: ['keys', 'none'], default: 'keys', help: 'keys: every request needs an API key (one is made and printed at first start); none: anyone who reaches the port may use every session' },
  { key: 'allowedOrigins', flag: 'allowed-origins', env: 'ALLOWED_ORIGINS', kind: 'string', default: '', help: "comma-separated browser origins (https://app.example.com) allowed besides the server's own, for WebSockets, the page's cookie and keys in URLs" },
  { key: 'trustProxy', flag: 'trust-proxy', env: 'TRUST_PROXY', kind: 'string', default: '', help: 'comma-separated proxy addresses or CIDRs (or loopback) whose X-Forwarded-For names the client for the per-IP limits; empty: trust none' },
  { key: 'connBurstPerIp', flag: 'conn-burst-per-ip', env: 'CONN_BURST_PER_IP', kind: 'int', default: 1000, min: 0, help: 'extra new connections (and requests without a valid key) one IP may make above --conn-rate-per-ip, per minute' },
  { key: 'keyMessagesPerMinute', flag: 'key-messages-per-minute', env: 'KEY_MESSAGES_PER_MINUTE', kind: 'int', default: 600, min: 0, help: "each key's messages per minute across its sessions (plus as many per 10 minutes as a burst), unless the key has its own; 0 = no limit" },
  { key: 'keySessionsPerMinute', flag: 'key-sessions-per-minute', env: 'KEY_SESSIONS_PER_MINUTE', kind: 'int', default: 600, min: 0, help: "each key's new sessions per minute (plus as many per 10 minutes as a burst); 0 = no limit" },
  { key: 'keyLiveSessions', flag: 'key-live-sessions', env: 'KEY_LIVE_SESSIONS', kind: 'int', default: 10_000, min: 0, help: "each key's active sessions on this node (past it its idle ones are passivated first); 0 = no limit" },
  { key: 'keyTokensPerDay', flag: 'key-tokens-per-day', env: 'KEY_TOKENS_PER_DAY', kind: 'int', default: 0, min: 0, help: "each key's tokens (in + out) per UTC day over every model, unless the key has its own; past it: budget_exceeded. 0 = no budget" },
  { key: 'keyConnections', flag: 'key-connections', env: 'KEY_CONNECTIONS', kind: 'int', default: 10_000, min: 0, help: "each key's open WebSocket, SSE and streamed /v1 connections on this node; 0 = no limit" },
  { key: 'retentionDays', flag: 'retention-days', env: 'RETENTION_DAYS', kind: 'int', default: 0, min: 0, help: 'delete sessions with no activity for this many days, in the background (0 = keep forever)' },
];
