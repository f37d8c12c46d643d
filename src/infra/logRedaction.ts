/**
 * Session ids are bearer secrets (22 base64url characters, 128 random bits):
 * no log line carries one whole. Every string a line carries (a `sessionId`
 * field, a request `path`, an error message) is scanned, and each id-shaped
 * token is cut to its first characters, enough to tell sessions apart when
 * reading logs and useless to an attacker. One redaction point for every
 * `logger.*` call, so a new call cannot forget it.
 */
const SESSION_ID_TOKEN = /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{22}(?![A-Za-z0-9_-])/g;

/** Characters of a session id that stay visible in logs. */
export const SHOWN_ID_CHARS = 6;

export function redactText(text: string): string {
  // The test is cheap; most strings hold no id and are returned as they are.
  if (text.length < 22) return text;
  return text.replace(SESSION_ID_TOKEN, (token) => `${token.slice(0, SHOWN_ID_CHARS)}…`);
}

/** The fields of one log line, with every id-shaped token in its strings cut short (nested values too, a few levels deep). */
export function redactFields<T extends Record<string, unknown>>(fields: T): T {
  return redactValue(fields, 0) as T;
}

function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object' || depth > 4) return value;
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1));
  // An error's text may quote an id (a store's message, a stack): written the way pino writes errors, cut short.
  if (value instanceof Error) return { type: value.name, message: redactText(value.message), ...(value.stack ? { stack: redactText(value.stack) } : {}) };
  // Other class instances are left to pino's serializers; plain records are walked.
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) return value;
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) copy[key] = redactValue(item, depth + 1);
  return copy;
}
