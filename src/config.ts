import { parseArgs } from 'node:util';
import type { LogLevel } from './infra/jsonLogger.ts';

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
  replayLogSize: number;
  heartbeatMs: number;
  maxSessions: number;
  storeKind: StoreKind;
  databaseUrl: string;
  dataDir: string;
  flushIntervalMs: number;
}

/** `auto`: PostgreSQL when the database URL is a postgres:// one, else SQLite. */
export type StoreKind = 'auto' | 'sqlite' | 'postgres' | 'memory';

type Kind = 'int' | 'string' | 'level' | 'choice';

interface Setting {
  key: keyof Config;
  flag: string;
  env: string;
  kind: Kind;
  default: number | string;
  min?: number;
  /** For kind `choice`: the values allowed. */
  choices?: readonly string[];
  help: string;
}

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

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
  { key: 'replayLogSize', flag: 'replay-log-size', env: 'REPLAY_LOG_SIZE', kind: 'int', default: 1000, min: 0, help: 'recent chunks kept per session for resume' },
  { key: 'heartbeatMs', flag: 'heartbeat-ms', env: 'HEARTBEAT_MS', kind: 'int', default: 15_000, min: 1, help: 'SSE comment heartbeat interval' },
  { key: 'maxSessions', flag: 'max-sessions', env: 'MAX_SESSIONS', kind: 'int', default: 0, min: 0, help: 'most active sessions on this node, 0 for no limit (beyond: overloaded)' },
  { key: 'storeKind', flag: 'store', env: 'STORE', kind: 'choice', default: 'auto', choices: ['auto', 'sqlite', 'postgres', 'memory'], help: 'where history is kept: sqlite, postgres, memory (auto: postgres for a postgres:// DATABASE_URL, else sqlite)' },
  { key: 'databaseUrl', flag: 'database-url', env: 'DATABASE_URL', kind: 'string', default: '', help: 'postgres://user:password@host:5432/db, or a SQLite file path (default <data-dir>/llm-chat.sqlite)' },
  { key: 'dataDir', flag: 'data-dir', env: 'DATA_DIR', kind: 'string', default: './data', help: 'directory of the SQLite database file' },
  { key: 'flushIntervalMs', flag: 'flush-interval-ms', env: 'FLUSH_INTERVAL_MS', kind: 'int', default: 500, min: 10, help: 'how often a streaming reply is written to the store (what a crash can lose)' },
];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type ParsedCommandLine = { help: true } | { help: false; config: Config };

export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCommandLine {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const setting of SETTINGS) options[setting.flag] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. See --help.`);
  }
  if (values['help'] === true) return { help: true };

  const config: Record<string, number | string> = {};
  for (const setting of SETTINGS) {
    const fromFlag = values[setting.flag];
    const raw = typeof fromFlag === 'string' ? fromFlag : env[setting.env];
    const source = typeof fromFlag === 'string' ? `--${setting.flag}` : setting.env;
    config[setting.key] = raw === undefined || raw === '' ? setting.default : convert(setting, raw, source);
  }
  return { help: false, config: config as unknown as Config };
}

function convert(setting: Setting, raw: string, source: string): number | string {
  switch (setting.kind) {
    case 'string':
      return raw;
    case 'choice':
      if (!setting.choices?.includes(raw)) throw new ConfigError(`${source} must be one of ${setting.choices?.join(', ')}; got "${raw}"`);
      return raw;
    case 'level':
      if (!(LEVELS as readonly string[]).includes(raw)) throw new ConfigError(`${source} must be one of ${LEVELS.join(', ')}; got "${raw}"`);
      return raw;
    case 'int': {
      if (!/^\d+$/.test(raw)) throw new ConfigError(`${source} must be a whole number; got "${raw}"`);
      const value = Number(raw);
      if (setting.min !== undefined && value < setting.min) throw new ConfigError(`${source} must be at least ${setting.min}; got ${value}`);
      return value;
    }
  }
}

export function helpText(): string {
  const rows = SETTINGS.map((setting) => {
    const left = `  --${setting.flag} <${setting.kind === 'int' ? 'n' : 'value'}>`;
    return `${left.padEnd(32)}${setting.help}\n${''.padEnd(32)}env ${setting.env}, default ${JSON.stringify(setting.default)}`;
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
    'Endpoints: GET /healthz, WS /ws, GET /sse/:sessionId, POST /api/sessions,',
    'GET /api/sessions/:id, POST /api/sessions/:id/messages, POST /api/sessions/:id/cancel,',
    'DELETE /api/sessions/:id. See README.md and docs/protocol.md.',
    'Also: GET /api/sessions (paginated), GET /api/sessions/:id/messages (paginated).',
    '',
  ].join('\n');
}
