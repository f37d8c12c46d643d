import { readFileSync } from 'node:fs';

/** One model a client can name: an OpenAI-compatible server, or the simulated one. */
export interface ModelSpec {
  /** What clients call it (`model` on /v1, sessions, WebSocket messages). */
  readonly name: string;
  readonly provider: 'openai' | 'simulated';
  /** `openai`: the server's API base URL and the model id it knows. */
  readonly baseUrl?: string;
  readonly model?: string;
  /** `openai`: the key, read at start-up from the environment variable the file names. */
  readonly apiKey?: string;
  /** Names of other models tried in order when this one fails before its first token. */
  readonly fallbacks: readonly string[];
  /** Per-model overrides of `--system-prompt`, `--temperature`, `--max-tokens`, `--history-budget-tokens`. */
  readonly systemPrompt?: string;
  readonly temperature?: number;
  readonly maxTokens?: number;
  readonly historyBudgetTokens?: number;
}

export interface ModelsConfig {
  readonly defaultModel: string;
  readonly models: readonly ModelSpec[];
}

/** A models file that cannot be used; the message names the file and the field. */
export class ModelsFileError extends Error {
  override name = 'ModelsFileError';
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FIELDS: Record<ModelSpec['provider'], readonly string[]> = {
  openai: ['name', 'provider', 'baseUrl', 'apiKeyEnv', 'model', 'fallbacks', 'systemPrompt', 'temperature', 'maxTokens', 'historyBudgetTokens'],
  simulated: ['name', 'provider', 'fallbacks'],
};

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Reads and checks a models file (`--models-file`):
 * `{"default": NAME, "models": [{"name", "provider": "openai"|"simulated", "baseUrl", "apiKeyEnv", "model", "fallbacks"}, …]}`.
 * Every mistake is reported with the field it is in (`models[1].baseUrl`),
 * unknown fields included: a typo must not silently change what runs.
 */
export function loadModelsFile(path: string, env: NodeJS.ProcessEnv): ModelsConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ModelsFileError(`--models-file ${path}: cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ModelsFileError(`--models-file ${path}: not valid JSON (${(error as Error).message})`);
  }
  return parseModels(value, env, path);
}

export function parseModels(value: unknown, env: NodeJS.ProcessEnv, source = 'models file'): ModelsConfig {
  const fail = (field: string, why: string): never => {
    throw new ModelsFileError(`--models-file ${source}: ${field} ${why}`);
  };
  if (!isObject(value)) return fail('the top level', 'must be an object {"default", "models"}');
  for (const key of Object.keys(value)) if (key !== 'default' && key !== 'models') fail(`"${key}"`, 'is not a known field (expected "default" and "models")');
  if (!Array.isArray(value['models']) || value['models'].length === 0) return fail('models', 'must be a non-empty array');
  const seen = new Set<string>();
  const models = value['models'].map((entry: unknown, index: number): ModelSpec => {
    const at = `models[${index}]`;
    if (!isObject(entry)) return fail(at, 'must be an object');
    const name = entry['name'];
    if (typeof name !== 'string' || !NAME.test(name)) return fail(`${at}.name`, 'must be a name of letters, digits and . _ : / - (at most 128)');
    if (seen.has(name)) fail(`${at}.name`, `"${name}" is used twice`);
    seen.add(name);
    const kind = entry['provider'];
    if (kind !== 'openai' && kind !== 'simulated') return fail(`${at}.provider`, 'must be "openai" or "simulated"');
    const provider: ModelSpec['provider'] = kind;
    for (const key of Object.keys(entry)) {
      if (!FIELDS[provider].includes(key)) fail(`${at}.${key}`, `is not a field of a "${provider}" model (known: ${FIELDS[provider].join(', ')})`);
    }
    const fallbacks = entry['fallbacks'] ?? [];
    if (!Array.isArray(fallbacks) || fallbacks.some((fallback) => typeof fallback !== 'string')) return fail(`${at}.fallbacks`, 'must be an array of model names');
    const spec = { name, provider, fallbacks: fallbacks as string[] };
    if (provider === 'simulated') return spec;

    const baseUrl = entry['baseUrl'];
    if (typeof baseUrl !== 'string' || !/^https?:\/\/[^/]/.test(baseUrl)) return fail(`${at}.baseUrl`, 'must be an http:// or https:// URL');
    const model = entry['model'];
    if (typeof model !== 'string' || model === '') return fail(`${at}.model`, "must be the model id the server knows (e.g. gpt-4o-mini)");
    const keyEnv = entry['apiKeyEnv'];
    let apiKey: string | undefined;
    if (keyEnv !== undefined) {
      if (typeof keyEnv !== 'string' || !ENV_NAME.test(keyEnv)) return fail(`${at}.apiKeyEnv`, 'must be the name of an environment variable');
      apiKey = env[keyEnv];
      if (!apiKey) fail(`${at}.apiKeyEnv`, `names ${keyEnv}, which is not set (or empty)`);
    }
    const optional = (key: string, check: (v: unknown) => boolean, what: string) => {
      const v = entry[key];
      if (v !== undefined && !check(v)) fail(`${at}.${key}`, what);
      return v;
    };
    const systemPrompt = optional('systemPrompt', (v) => typeof v === 'string', 'must be a string') as string | undefined;
    const temperature = optional('temperature', (v) => typeof v === 'number' && v >= 0 && v <= 2, 'must be a number from 0 to 2') as number | undefined;
    const isCount = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 1;
    const maxTokens = optional('maxTokens', isCount, 'must be a whole number of at least 1') as number | undefined;
    const historyBudgetTokens = optional('historyBudgetTokens', isCount, 'must be a whole number of at least 1') as number | undefined;
    return {
      ...spec,
      baseUrl,
      model,
      ...(apiKey !== undefined ? { apiKey } : {}),
      ...(systemPrompt !== undefined ? { systemPrompt } : {}),
      ...(temperature !== undefined ? { temperature } : {}),
      ...(maxTokens !== undefined ? { maxTokens } : {}),
      ...(historyBudgetTokens !== undefined ? { historyBudgetTokens } : {}),
    };
  });
  models.forEach((spec, index) => {
    spec.fallbacks.forEach((fallback, position) => {
      const at = `models[${index}].fallbacks[${position}]`;
      if (!seen.has(fallback)) fail(at, `names "${fallback}", which is not a model in this file`);
      if (fallback === spec.name) fail(at, 'names the model itself');
      if (spec.fallbacks.indexOf(fallback) !== position) fail(at, `names "${fallback}" twice`);
    });
  });
  const defaultModel = value['default'] ?? models[0]!.name;
  if (typeof defaultModel !== 'string' || !seen.has(defaultModel)) return fail('default', `must name one of the models (${[...seen].join(', ')})`);
  return { defaultModel, models };
}
