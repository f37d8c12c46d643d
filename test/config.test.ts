import { describe, expect, it } from 'vitest';
import { ConfigError, helpText, loadConfig, SETTINGS } from '../src/config.ts';
import type { Config } from '../src/config.ts';

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
      expect(help).toContain(`--${setting.flag}`);
      expect(help).toContain(`env ${setting.env}`);
    }
    expect(help).toContain('default unset');
  });
});
