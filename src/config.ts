import { parseArgs } from 'node:util';
import { ERROR_CODES } from './domain/errors.ts';
import { loadModelsFile, ModelsFileError } from './modelsFile.ts';
import { trustedProxies } from './transport/clientAddress.ts';
import { LEVELS, PROVIDERS, SETTINGS } from './settings.ts';
import type { Config, Setting } from './settings.ts';

export { SETTINGS } from './settings.ts';
export type { Config, ProviderKind, StoreKind } from './settings.ts';

/**
 * One typed configuration: command-line flags over environment variables over
 * defaults, validated at start-up. The table below also writes `--help`.
 */
const BOOLEAN_WORDS: Record<string, boolean> = { true: true, '1': true, yes: true, on: true, false: false, '0': false, no: false, off: false };

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
    const indent = `\n${''.padEnd(32)}`;
    return `${head}${wrapped(setting.help, 100 - 32).join(indent)}${indent}env ${setting.env}, default ${shown}`;
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
    ...wrapped(`Error codes (docs/protocol.md gives each one's HTTP status and meaning): ${ERROR_CODES.join(', ')}.`),
    'WebSocket close codes: 1000, 1001, 1007, 1008, 1009, 1011, 1013 (try again later), 4401 (no valid key,',
    'or revoked), 4404 (no such session), 4410 (session deleted).',
    '',
  ].join('\n');
}

/** `text` in lines of at most `width` characters, broken at spaces. */
function wrapped(text: string, width = 100): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}
