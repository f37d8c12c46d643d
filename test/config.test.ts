import type { Config } from '../src/config.ts';
import { allowedOriginsOf, ConfigError, helpText, loadConfig, SETTINGS } from '../src/config.ts';
import { describe, expect, it } from 'vitest';

const configOf = (argv: string[], env: NodeJS.ProcessEnv = {}): Config => {
  const parsed = loadConfig(argv, env);
  if (parsed.help) throw new Error('unexpected --help');
  return parsed.config;
};

describe('model options', () => {
  it('defaults to the simulated model with the documented resilience settings', () => {
    expect(configOf([])).toMatchObject({
      llmProvider: 'simulated',
      llmBaseUrl: 'https://api.openai.com/v1',
      llmTemperature: undefined,
      llmMaxTokens: 0,
      firstTokenTimeoutMs: 30_000,
      stallTimeoutMs: 60_000,
      llmRetries: 2,
      breakerFailures: 5,
      breakerFailureRate: 50,
      breakerCooldownMs: 30_000,
      historyBudgetTokens: 3_000,
      chunkFlushMs: 16,
    });
  });

  it('takes the provider from env or flag (flag wins) and needs a model for openai', () => {
    const env = { LLM_PROVIDER: 'openai', LLM_MODEL: 'llama3.2', LLM_BASE_URL: 'http://localhost:11434/v1', LLM_TEMPERATURE: '0.7' };
    expect(configOf([], env)).toMatchObject({ llmProvider: 'openai', llmModel: 'llama3.2', llmBaseUrl: 'http://localhost:11434/v1', llmTemperature: 0.7 });
    expect(configOf(['--provider', 'simulated'], env).llmProvider).toBe('simulated');
    expect(() => configOf(['--provider', 'openai'])).toThrow(ConfigError);
    expect(() => configOf(['--provider', 'anthropic'])).toThrow(/must be one of simulated, openai/);
  });

  it('validates numbers and ranges', () => {
    expect(() => configOf(['--temperature', '3'])).toThrow(/between 0 and 2/);
    expect(() => configOf(['--temperature', 'hot'])).toThrow(/must be a number/);
    expect(() => configOf(['--breaker-failure-rate', '101'])).toThrow(/at most 100/);
  });

  it('--help lists every option with its env variable', () => {
    const help = helpText();
    for (const setting of SETTINGS) {
      expect(help).toContain(setting.kind === 'boolean' ? `--[no-]${setting.flag}` : `--${setting.flag}`);
      expect(help).toContain(`env ${setting.env}`);
    }
    expect(help).toContain('default unset');
  });
});

describe('configuration', () => {
  it('has defaults for the operations options', () => {
    expect(configOf([])).toMatchObject({
      shutdownDeadlineMs: 10_000,
      logFormat: 'auto',
      metrics: true,
      inspector: true,
      adminToken: '',
      inspectRedact: false,
      inspectStately: '',
    });
  });

  it('takes booleans as bare flags, --no- flags or environment words; flags win', () => {
    expect(configOf(['--inspect-redact']).inspectRedact).toBe(true);
    expect(configOf(['--no-inspector']).inspector).toBe(false);
    expect(configOf([], { INSPECTOR: 'off', METRICS: 'no', INSPECT_REDACT: '1' })).toMatchObject({ inspector: false, metrics: false, inspectRedact: true });
    expect(configOf(['--inspector'], { INSPECTOR: 'false' }).inspector).toBe(true);
    expect(() => configOf([], { METRICS: 'maybe' })).toThrow(new ConfigError('METRICS must be true or false; got "maybe"'));
    expect(() => configOf(['--metrics', '--no-metrics'])).toThrow(/contradict/);
  });

  it('validates choices, the admin token and the Stately URL with clear messages', () => {
    expect(configOf(['--log-format', 'pretty']).logFormat).toBe('pretty');
    expect(() => configOf(['--log-format', 'xml'])).toThrow('--log-format must be one of auto, json, pretty; got "xml"');
    expect(configOf([], { ADMIN_TOKEN: 'a-long-enough-admin-token' }).adminToken).toBe('a-long-enough-admin-token');
    expect(() => configOf(['--admin-token', 'short'])).toThrow(/at least 16 characters/);
    expect(configOf(['--inspect-stately', 'ws://localhost:8081']).inspectStately).toBe('ws://localhost:8081');
    expect(() => configOf(['--inspect-stately', 'http://x'])).toThrow(/ws:\/\/ or wss:\/\/ URL/);
    expect(configOf(['--shutdown-deadline-ms', '0']).shutdownDeadlineMs).toBe(0);
  });

  it('lists every setting in --help', () => {
    const help = helpText();
    for (const setting of SETTINGS) {
      expect(help).toContain(setting.kind === 'boolean' ? `--[no-]${setting.flag}` : `--${setting.flag} `);
      expect(help).toContain(`env ${setting.env},`);
    }
  });
});

describe('body limits', () => {
  it('/v1 bodies default to 16 MiB (--max-v1-body-bytes, env MAX_V1_BODY_BYTES), other REST bodies to 64 KiB', () => {
    expect(configOf([])).toMatchObject({ maxV1BodyBytes: 16 * 1024 * 1024, maxBodyBytes: 65_536 });
    expect(configOf(['--max-v1-body-bytes', '1048576']).maxV1BodyBytes).toBe(1_048_576);
    expect(configOf([], { MAX_V1_BODY_BYTES: '2097152' }).maxV1BodyBytes).toBe(2_097_152);
    expect(() => configOf(['--max-v1-body-bytes', '0'])).toThrow(ConfigError);
    expect(/--max-v1-body-bytes [^]*?, default (\d+)/.exec(helpText())?.[1]).toBe(String(16 * 1024 * 1024));
  });
});

describe('many nodes', () => {
  it('defaults to one process and no Redis; --workers needs --redis-url', () => {
    expect(configOf([])).toMatchObject({ redisUrl: '', workers: 1, leaseMs: 5000, nodeId: '' });
    expect(configOf([], { REDIS_URL: 'redis://127.0.0.1:6379', WORKERS: '0', LEASE_MS: '2000', NODE_ID: 'edge-1' })).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      workers: 0,
      leaseMs: 2000,
      nodeId: 'edge-1',
    });
    expect(() => configOf(['--workers', '4'])).toThrow(/--workers 4 needs --redis-url/);
    expect(() => configOf(['--workers', '0'])).toThrow(/needs --redis-url/);
    expect(() => configOf(['--redis-url', 'http://x'])).toThrow(/redis:\/\//);
    expect(() => configOf(['--redis-url', 'redis://x', '--workers', '2', '--store', 'memory'])).toThrow(/memory cannot be shared/);
    expect(() => configOf(['--lease-ms', '50'])).toThrow(/at least 200/);
    expect(() => configOf(['--node-id', 'a b'])).toThrow(/--node-id/);
    expect(helpText()).toContain('--redis-url');
    expect(helpText()).toContain('--workers');
    expect(helpText()).toContain('--lease-ms');
    // What an operator needs from --help alone: the env names, 0 = one per core, the exit code, the lease default.
    const flat = helpText().replace(/\s+/g, ' ');
    expect(flat).toMatch(/--redis-url <value> [^]*?on another store than the other nodes exits with code 2 env REDIS_URL,/);
    expect(flat).toMatch(/--workers <n> [^]*?0 = one per core; more than 1 needs --redis-url, else start-up exits with code 2 env WORKERS,/);
    expect(flat).toMatch(/--lease-ms <n> [^]*? env LEASE_MS, default 5000 /);
  });
});

describe('identity and access options', () => {
  it('default to API keys, no extra origins, keep-forever retention and the documented per-key limits', () => {
    expect(configOf([])).toMatchObject({
      auth: 'keys',
      allowedOrigins: '',
      retentionDays: 0,
      connRatePerIp: 50,
      connBurstPerIp: 1000,
      keyMessagesPerMinute: 600,
      keySessionsPerMinute: 600,
      keyLiveSessions: 10_000,
      keyConnections: 10_000,
    });
  });

  it('take --auth, --allowed-origins and --retention-days from flags or the environment, and check them', () => {
    expect(configOf([], { AUTH: 'none', ALLOWED_ORIGINS: 'https://a.example, http://localhost:5173', RETENTION_DAYS: '30' })).toMatchObject({
      auth: 'none',
      allowedOrigins: 'https://a.example, http://localhost:5173',
      retentionDays: 30,
    });
    expect(allowedOriginsOf(configOf(['--allowed-origins', 'https://a.example, http://localhost:5173,']))).toEqual(['https://a.example', 'http://localhost:5173']);
    expect(() => configOf(['--auth', 'open'])).toThrow(/--auth must be one of keys, none/);
    expect(() => configOf(['--allowed-origins', 'https://a.example/path'])).toThrow(/no path/);
    expect(() => configOf(['--retention-days', '-1'])).toThrow(ConfigError);
  });

  it('--new-key NAME is a command, never read from the environment', () => {
    const parsed = loadConfig(['--new-key', ' ops team '], {});
    expect(parsed.help === false && parsed.newKey).toBe('ops team');
    const plain = loadConfig([], { NEW_KEY: 'x' });
    expect(plain.help === false && plain.newKey).toBeUndefined();
    expect(() => loadConfig(['--new-key', '  '], {})).toThrow(/--new-key needs a name/);
    expect(helpText()).toContain('--new-key <name>');
  });
});
