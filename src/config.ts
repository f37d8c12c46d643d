import { parseArgs } from 'node:util';
import type { LogLevel } from './infra/pinoLogger.ts';
import { loadModelsFile, ModelsFileError } from './modelsFile.ts';
import type { ModelsConfig } from './modelsFile.ts';
import { trustedProxies } from './transport/clientAddress.ts';

/**
 * One typed configuration: command-line flags over environment variables over
 * defaults, validated at start-up. The table below also writes `--help`.
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
const PROVIDERS: readonly ProviderKind[] = ['simulated', 'openai'];

type Kind = 'int' | 'string' | 'level' | 'provider' | 'decimal' | 'boolean' | 'choice';

interface Setting {
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

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

const BOOLEAN_WORDS: Record<string, boolean> = { true: true, '1': true, yes: true, on: true, false: false, '0': false, no: false, off: false };

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
  { key: 'wsPingMs', flag: 'ws-ping-ms', env: 'WS_PING_MS', kind: 'int', default: 30_000, min: 0, help: 'WebSocket ping interval; a peer that has not answered by the next ping is dropped (0: never ping)' },
  { key: 'replayLogSize', flag: 'replay-log-size', env: 'REPLAY_LOG_SIZE', kind: 'int', default: 1000, min: 0, help: 'recent chunks kept per session for resume' },
  { key: 'replayLogBytes', flag: 'replay-log-bytes', env: 'REPLAY_LOG_BYTES', kind: 'int', default: 1_048_576, min: 0, help: 'and at most this many bytes of their text per session (2 bytes a UTF-16 unit; the newest chunk always kept)' },
  { key: 'heartbeatMs', flag: 'heartbeat-ms', env: 'HEARTBEAT_MS', kind: 'int', default: 15_000, min: 1, help: 'SSE comment heartbeat interval' },
  { key: 'maxSessions', flag: 'max-sessions', env: 'MAX_SESSIONS', kind: 'int', default: 100_000, min: 0, help: 'most active sessions on this node, 0 for no limit (beyond: overloaded)' },
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
  { key: 'redisUrl', flag: 'redis-url', env: 'REDIS_URL', kind: 'string', default: '', help: 'redis://host:6379: many nodes share the bus, session ownership and the limits through it (empty: one node, all in process)' },
  { key: 'workers', flag: 'workers', env: 'WORKERS', kind: 'int', default: 1, min: 0, help: 'worker processes sharing the port (node:cluster); 0 = one per core; more than 1 needs --redis-url' },
  { key: 'leaseMs', flag: 'lease-ms', env: 'LEASE_MS', kind: 'int', default: 5000, min: 200, help: "with --redis-url: a session owner's lease; a dead node's sessions move after about this long" },
  { key: 'nodeId', flag: 'node-id', env: 'NODE_ID', kind: 'string', default: '', help: 'with --redis-url: this node\'s name in the cluster (default host-pid-random; letters, digits, . _ -)' },
  { key: 'storeTimeoutMs', flag: 'store-timeout-ms', env: 'STORE_TIMEOUT_MS', kind: 'int', default: 5000, min: 100, help: 'PostgreSQL: a query or connection with no answer in this long fails (store_unavailable); the longest a message waits for its acknowledgement' },
  { key: 'auth', flag: 'auth', env: 'AUTH', kind: 'choice', choices: ['keys', 'none'], default: 'keys', help: 'keys: every request needs an API key (one is made and printed at first start); none: anyone who reaches the port may use every session' },
  { key: 'allowedOrigins', flag: 'allowed-origins', env: 'ALLOWED_ORIGINS', kind: 'string', default: '', help: "comma-separated browser origins (https://app.example.com) allowed besides the server's own, for WebSockets and the page's cookie" },
  { key: 'trustProxy', flag: 'trust-proxy', env: 'TRUST_PROXY', kind: 'string', default: '', help: 'comma-separated proxy addresses or CIDRs (or loopback) whose X-Forwarded-For names the client for the per-IP limits; empty: trust none' },
  { key: 'connBurstPerIp', flag: 'conn-burst-per-ip', env: 'CONN_BURST_PER_IP', kind: 'int', default: 1000, min: 0, help: 'extra new connections (and requests without a valid key) one IP may make above --conn-rate-per-ip, per minute' },
  { key: 'keyMessagesPerMinute', flag: 'key-messages-per-minute', env: 'KEY_MESSAGES_PER_MINUTE', kind: 'int', default: 600, min: 0, help: "each key's messages per minute across its sessions (plus as many per 10 minutes as a burst), unless the key has its own; 0 = no limit" },
  { key: 'keySessionsPerMinute', flag: 'key-sessions-per-minute', env: 'KEY_SESSIONS_PER_MINUTE', kind: 'int', default: 600, min: 0, help: "each key's new sessions per minute (plus as many per 10 minutes as a burst); 0 = no limit" },
  { key: 'keyLiveSessions', flag: 'key-live-sessions', env: 'KEY_LIVE_SESSIONS', kind: 'int', default: 10_000, min: 0, help: "each key's active sessions on this node (past it its idle ones are passivated first); 0 = no limit" },
  { key: 'keyTokensPerDay', flag: 'key-tokens-per-day', env: 'KEY_TOKENS_PER_DAY', kind: 'int', default: 0, min: 0, help: "each key's tokens (in + out) per UTC day over every model, unless the key has its own; past it: budget_exceeded. 0 = no budget" },
  { key: 'keyConnections', flag: 'key-connections', env: 'KEY_CONNECTIONS', kind: 'int', default: 10_000, min: 0, help: "each key's open WebSocket, SSE and streamed /v1 connections on this node; 0 = no limit" },
  { key: 'retentionDays', flag: 'retention-days', env: 'RETENTION_DAYS', kind: 'int', default: 0, min: 0, help: 'delete sessions with no activity for this many days, in the background (0 = keep forever)' },
];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** `newKey`: `--new-key NAME` was given: make an API key, print it and exit. */
export type ParsedCommandLine = { help: true } | { help: false; config: Config; newKey?: string };

export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCommandLine {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' }, 'new-key': { type: 'string' } };
  for (const setting of SETTINGS) {
    if (setting.kind === 'boolean') {
      options[setting.flag] = { type: 'boolean' };
      options[`no-${setting.flag}`] = { type: 'boolean' };
    } else options[setting.flag] = { type: 'string' };
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. See --help.`);
  }
  if (values['help'] === true) return { help: true };

  const config: Record<string, number | string | boolean | undefined> = {};
  for (const setting of SETTINGS) {
    if (setting.kind === 'boolean' && (values[setting.flag] === true || values[`no-${setting.flag}`] === true)) {
      if (values[setting.flag] === true && values[`no-${setting.flag}`] === true) {
        throw new ConfigError(`--${setting.flag} and --no-${setting.flag} contradict each other`);
      }
      config[setting.key] = values[setting.flag] === true;
      continue;
    }
    const fromFlag = values[setting.flag];
    const raw = typeof fromFlag === 'string' ? fromFlag : env[setting.env];
    const source = typeof fromFlag === 'string' ? `--${setting.flag}` : setting.env;
    config[setting.key] = raw === undefined || raw === '' ? setting.default : convert(setting, raw, source);
  }
  const typed = config as unknown as Config;
  validate(typed);
  if (typed.modelsFile !== '') {
    const explicit = ['provider', 'model', 'base-url', 'api-key'].filter((flag) => typeof values[flag] === 'string');
    if (explicit.length > 0) throw new ConfigError(`--models-file describes the models; ${explicit.map((flag) => `--${flag}`).join(', ')} would describe one more: use one or the other`);
    try {
      typed.models = loadModelsFile(typed.modelsFile, env);
    } catch (error) {
      if (error instanceof ModelsFileError) throw new ConfigError(error.message);
      throw error;
    }
  }
  const newKey = values['new-key'];
  if (typeof newKey === 'string') {
    if (newKey.trim() === '' || newKey.length > 100) throw new ConfigError('--new-key needs a name of 1 to 100 characters (who the key is for)');
    return { help: false, config: typed, newKey: newKey.trim() };
  }
  return { help: false, config: typed };
}

// Checks that span more than one value's syntax.
function validate(config: Config): void {
  if (config.llmProvider === 'openai' && !config.llmModel && config.modelsFile === '') {
    throw new ConfigError('--provider openai needs a model: set --model or LLM_MODEL (e.g. gpt-4o-mini, llama3.2)');
  }
  if (config.adminToken !== '' && config.adminToken.length < 16) {
    throw new ConfigError('--admin-token (ADMIN_TOKEN) must be at least 16 characters; leave it empty to have one generated');
  }
  if (config.workers !== 1 && config.redisUrl === '') {
    throw new ConfigError(
      `--workers ${config.workers} needs --redis-url (REDIS_URL): worker processes share sessions, events and limits through Redis`,
    );
  }
  if (config.redisUrl !== '' && !/^rediss?:\/\/./.test(config.redisUrl)) {
    throw new ConfigError(`--redis-url (REDIS_URL) must be a redis:// or rediss:// URL; got "${config.redisUrl}"`);
  }
  if (config.workers !== 1 && config.storeKind === 'memory') {
    throw new ConfigError('--store memory cannot be shared by several worker processes (each would keep its own history); use sqlite or postgres');
  }
  if (config.nodeId !== '' && !/^[A-Za-z0-9._-]{1,64}$/.test(config.nodeId)) {
    throw new ConfigError(`--node-id (NODE_ID) may hold letters, digits, ".", "_" and "-" (at most 64); got "${config.nodeId}"`);
  }
  for (const origin of allowedOriginsOf(config)) {
    if (!/^https?:\/\/[^/?#\s]+$/i.test(origin)) {
      throw new ConfigError(`--allowed-origins (ALLOWED_ORIGINS) takes origins such as https://app.example.com:8443 (no path); got "${origin}"`);
    }
  }
  try {
    trustedProxies(config.trustProxy);
  } catch (error) {
    throw new ConfigError(`--trust-proxy (TRUST_PROXY) takes addresses and CIDRs such as 10.0.0.0/8, or loopback: ${(error as Error).message}`);
  }
  if (config.inspectStately !== '' && !/^wss?:\/\/./.test(config.inspectStately)) {
    throw new ConfigError(`--inspect-stately (INSPECT_STATELY) must be a ws:// or wss:// URL; got "${config.inspectStately}"`);
  }
}

/** `--allowed-origins` as a list. */
export function allowedOriginsOf(config: Pick<Config, 'allowedOrigins'>): string[] {
  return config.allowedOrigins
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin !== '');
}

function convert(setting: Setting, raw: string, source: string): number | string | boolean {
  switch (setting.kind) {
    case 'string':
      return raw;
    case 'choice':
      if (!setting.choices?.includes(raw)) throw new ConfigError(`${source} must be one of ${setting.choices?.join(', ')}; got "${raw}"`);
      return raw;
    case 'level':
      if (!(LEVELS as readonly string[]).includes(raw)) throw new ConfigError(`${source} must be one of ${LEVELS.join(', ')}; got "${raw}"`);
      return raw;
    case 'boolean': {
      const value = BOOLEAN_WORDS[raw.toLowerCase()];
      if (value === undefined) throw new ConfigError(`${source} must be true or false; got "${raw}"`);
      return value;
    }
    case 'int': {
      if (!/^\d+$/.test(raw)) throw new ConfigError(`${source} must be a whole number; got "${raw}"`);
      const value = Number(raw);
      if (setting.min !== undefined && value < setting.min) throw new ConfigError(`${source} must be at least ${setting.min}; got ${value}`);
      if (setting.max !== undefined && value > setting.max) throw new ConfigError(`${source} must be at most ${setting.max}; got ${value}`);
      return value;
    }
    case 'provider':
      if (!(PROVIDERS as readonly string[]).includes(raw)) throw new ConfigError(`${source} must be one of ${PROVIDERS.join(', ')}; got "${raw}"`);
      return raw;
    case 'decimal': {
      const value = Number(raw);
      if (!/^\d+(\.\d+)?$/.test(raw) || !Number.isFinite(value)) throw new ConfigError(`${source} must be a number; got "${raw}"`);
      if ((setting.min !== undefined && value < setting.min) || (setting.max !== undefined && value > setting.max)) {
        throw new ConfigError(`${source} must be between ${setting.min} and ${setting.max}; got ${value}`);
      }
      return value;
    }
  }
}

export function helpText(): string {
  const rows = SETTINGS.map((setting) => {
    const left =
      setting.kind === 'boolean' ? `  --[no-]${setting.flag}` : `  --${setting.flag} <${setting.kind === 'int' ? 'n' : 'value'}>`;
    const shown = setting.default === undefined ? 'unset' : JSON.stringify(setting.default);
    // A flag too long for the column gets its text on the next line.
    const head = left.length >= 32 ? `${left}\n${''.padEnd(32)}` : left.padEnd(32);
    return `${head}${setting.help}\n${''.padEnd(32)}env ${setting.env}, default ${shown}`;
  });
  return [
    'llm-chat: a high-concurrency LLM chat gateway (WebSocket, SSE, REST).',
    '',
    'Usage: npm start -- [options]      (or: npx tsx src/main.ts [options])',
    '',
    'Options (flags override environment variables, which override defaults):',
    ...rows,
    '  -h, --help                      show this help',
    '',
    'Commands:',
    '  --new-key <name>                make an API key for <name> in the configured store (same --store,',
    '                                  --database-url, --data-dir as the server), print it once and exit',
    '',
    'Endpoints: GET /healthz, WS /ws, GET /sse/:sessionId, POST /api/sessions,',
    'GET /api/sessions/:id, POST /api/sessions/:id/messages, POST /api/sessions/:id/cancel,',
    'DELETE /api/sessions/:id, GET /api/status, POST /v1/chat/completions, GET /v1/models.',
    'See README.md and docs/protocol.md.',
    'Pages and operations: GET / (chat page), GET /inspector (admin token), GET /metrics, GET /readyz.',
    'Also: GET /api/sessions (paginated), GET /api/sessions/:id/messages (paginated), GET /api/usage',
    "(the caller's tokens by day and model).",
    'API keys (with --auth keys): Authorization: Bearer <key> everywhere; ?access_token=<key> on /ws and',
    '/sse/:id; the page signs in with POST /api/auth/login (GET /api/auth/me, POST /api/auth/logout).',
    'Key admin, behind the admin token: POST/GET /admin/keys, PATCH/DELETE /admin/keys/:id, GET /admin/usage.',
    'Key limits: messagesPerMinute, sessionsPerMinute, connections, liveSessions, tokensPerDay, models.',
    '',
    'Models file (--models-file): {"default": NAME, "models": [{"name", "provider": "openai"|"simulated",',
    '"baseUrl", "apiKeyEnv", "model", "fallbacks": [NAME…]}, …]}; clients pick one by name',
    '(/v1 "model", POST /api/sessions {"model"}, WebSocket {"type":"message","text","model"}).',
    '',
  ].join('\n');
}
