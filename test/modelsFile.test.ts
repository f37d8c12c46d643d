import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import { ModelsFileError, parseModels } from '../src/modelsFile.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const directory = mkdtempSync(join(tmpdir(), 'llm-chat-models-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let files = 0;
const file = (content: unknown) => {
  const path = join(directory, `models-${++files}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
};

/** The issue's own example. */
const EXAMPLE = {
  default: 'fast',
  models: [
    { name: 'fast', provider: 'openai', baseUrl: 'http://127.0.0.1:9001/v1', apiKeyEnv: 'FAST_KEY', model: 'upstream-model-id', fallbacks: ['backup'] },
    { name: 'backup', provider: 'openai', baseUrl: 'http://127.0.0.1:9002/v1', model: 'other-id' },
    { name: 'sim', provider: 'simulated' },
  ],
};

describe('the models file', () => {
  it('reads the documented shape, keys from the environment', () => {
    const parsed = loadConfig(['--models-file', file(EXAMPLE)], { FAST_KEY: 'sk-1' });
    if (parsed.help) throw new Error('unexpected help');
    expect(parsed.config.models).toEqual({
      defaultModel: 'fast',
      models: [
        { name: 'fast', provider: 'openai', baseUrl: 'http://127.0.0.1:9001/v1', apiKey: 'sk-1', model: 'upstream-model-id', fallbacks: ['backup'] },
        { name: 'backup', provider: 'openai', baseUrl: 'http://127.0.0.1:9002/v1', model: 'other-id', fallbacks: [] },
        { name: 'sim', provider: 'simulated', fallbacks: [] },
      ],
    });
    const fromEnv = loadConfig([], { MODELS_FILE: file(EXAMPLE), FAST_KEY: 'sk-1' });
    expect(!fromEnv.help && fromEnv.config.models?.defaultModel).toBe('fast');
  });

  const broken: [string, (example: typeof EXAMPLE) => unknown, RegExp][] = [
    ['a missing key variable', (e) => e, /models\[0\]\.apiKeyEnv names FAST_KEY, which is not set/],
    ['a default that names no model', (e) => ({ ...e, default: 'turbo' }), /default must name one of the models \(fast, backup, sim\)/],
    ['an unknown fallback', (e) => ({ ...e, models: [{ ...e.models[0], fallbacks: ['nope'] }, ...e.models.slice(1)] }), /models\[0\]\.fallbacks\[0\] names "nope", which is not a model/],
    ['a typo in a field', (e) => ({ ...e, models: [e.models[0], { ...e.models[1], baseURL: 'x' }, e.models[2]] }), /models\[1\]\.baseURL is not a field of a "openai" model/],
    ['a bad base URL', (e) => ({ ...e, models: [e.models[0], { ...e.models[1], baseUrl: 'localhost:9002' }, e.models[2]] }), /models\[1\]\.baseUrl must be an http:\/\/ or https:\/\/ URL/],
    ['a missing upstream model id', (e) => ({ ...e, models: [e.models[0], { name: 'backup', provider: 'openai', baseUrl: 'http://x/v1' }, e.models[2]] }), /models\[1\]\.model must be the model id/],
    ['a duplicate name', (e) => ({ ...e, models: [...e.models, { name: 'sim', provider: 'simulated' }] }), /models\[3\]\.name "sim" is used twice/],
    ['an unknown provider', (e) => ({ ...e, models: [...e.models.slice(0, 2), { name: 'sim', provider: 'anthropic' }] }), /models\[2\]\.provider must be "openai" or "simulated"/],
    ['a model falling back to itself', (e) => ({ ...e, models: [{ ...e.models[0], fallbacks: ['fast'] }, ...e.models.slice(1)] }), /models\[0\]\.fallbacks\[0\] names the model itself/],
    ['no models', () => ({ default: 'x', models: [] }), /models must be a non-empty array/],
  ];
  for (const [what, change, message] of broken) {
    it(`refuses ${what}, naming the field`, () => {
      const env = what === 'a missing key variable' ? {} : { FAST_KEY: 'k' };
      expect(() => parseModels(change(EXAMPLE), env)).toThrow(ModelsFileError);
      expect(() => loadConfig(['--models-file', file(change(EXAMPLE))], env)).toThrow(message);
    });
  }

  it('refuses a file that is not there or not JSON, and a file beside --model', () => {
    expect(() => loadConfig(['--models-file', join(directory, 'absent.json')], {})).toThrow(/cannot be read \(ENOENT\)/);
    expect(() => loadConfig(['--models-file', file('{"default": ')], {})).toThrow(/not valid JSON/);
    expect(() => loadConfig(['--models-file', file(EXAMPLE), '--model', 'x'], { FAST_KEY: 'k' })).toThrow(ConfigError);
  });

  it('stops the server at start-up with exit code 2 and the field in the message', () => {
    const bad = file({ ...EXAMPLE, models: [{ ...EXAMPLE.models[0], fallbacks: ['nope'] }, ...EXAMPLE.models.slice(1)] });
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', '--models-file', bad, '--port', '0'], {
      cwd: ROOT,
      env: { ...process.env, FAST_KEY: 'k' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('models[0].fallbacks[0] names "nope"');
  });
});
