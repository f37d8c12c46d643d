import type { Logger } from '../domain/ports.ts';

// `access_token=…` in any URL or query text, and anything shaped like an API key.
const ACCESS_TOKEN = /(access_token=)[^&\s"'#]+/gi;
const API_KEY = /llmc_[A-Za-z0-9_-]{43}/g;
const MAX_DEPTH = 4;

/** A string with every secret it carries replaced. */
export function redactText(text: string): string {
  if (!text.includes('access_token') && !text.includes('llmc_')) return text;
  return text.replace(ACCESS_TOKEN, '$1[redacted]').replace(API_KEY, 'llmc_[redacted]');
}

function holdsSecret(value: unknown, depth: number): boolean {
  if (typeof value === 'string') return value.includes('access_token') || value.includes('llmc_');
  if (depth >= MAX_DEPTH || value === null || typeof value !== 'object') return false;
  for (const field of Array.isArray(value) ? value : Object.values(value)) if (holdsSecret(field, depth + 1)) return true;
  return false;
}

function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactText(value);
  if (depth >= MAX_DEPTH || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) out[name] = redactValue(field, depth + 1);
  return out;
}

/**
 * A logger that never writes an API key or an `access_token` whole, whatever
 * a line carries (a URL, an error message). It copies a line only when a
 * string in it holds one.
 */
export function redactSecrets(logger: Logger): Logger {
  const clean = (fields: Record<string, unknown>) => (holdsSecret(fields, 0) ? (redactValue(fields, 0) as Record<string, unknown>) : fields);
  return {
    debug: (fields, message) => logger.debug(clean(fields), redactText(message)),
    info: (fields, message) => logger.info(clean(fields), redactText(message)),
    warn: (fields, message) => logger.warn(clean(fields), redactText(message)),
    error: (fields, message) => logger.error(clean(fields), redactText(message)),
    ...(logger.child ? { child: (fields: Record<string, unknown>) => redactSecrets(logger.child!(clean(fields))) } : {}),
  };
}
