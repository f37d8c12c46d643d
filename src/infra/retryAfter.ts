/** Longest wait an upstream may ask for that we still take as meant (a day). */
const MAX_RETRY_AFTER_MS = 86_400_000;

/**
 * How long an upstream asked us to wait: OpenAI's `retry-after-ms`, else
 * `Retry-After` as seconds or as an HTTP date. Undefined when absent or
 * unreadable. `now` is injectable for tests.
 */
export function parseRetryAfter(headers: Headers | undefined, now: number = Date.now()): number | undefined {
  if (!headers) return undefined;
  const milliseconds = headers.get('retry-after-ms');
  if (milliseconds !== null && /^\d+(\.\d+)?$/.test(milliseconds.trim())) return clamp(Number(milliseconds));
  const value = headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return clamp(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : clamp(date - now);
}

function clamp(ms: number): number {
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, Math.round(ms)));
}
