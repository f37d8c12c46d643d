import { createHash, randomBytes } from 'node:crypto';

/**
 * How API keys look: `llmc_` and 43 base64url characters (256 random bits),
 * so a key is recognisable in a config file or a leaked log, and a string of
 * another shape is refused without a store lookup. Key ids are not secret.
 */
const KEY_PATTERN = /^llmc_[A-Za-z0-9_-]{43}$/;

export function newApiKey(): string {
  return `llmc_${randomBytes(32).toString('base64url')}`;
}

export function newKeyId(): string {
  return `key_${randomBytes(9).toString('base64url')}`;
}

export function looksLikeApiKey(value: string): boolean {
  return KEY_PATTERN.test(value);
}

/**
 * SHA-256, hex. A key carries 256 random bits, so a fast unsalted hash is
 * enough: there is no dictionary to try, and a stolen table gives nothing
 * that opens a session. It also makes the lookup one indexed equality.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** What may be written in a log line about a key: its prefix and first characters, never the whole. */
export function keyHint(key: string): string {
  return `${key.slice(0, 9)}…`;
}
