import { readFileSync } from 'node:fs';

/**
 * The soft limit on open files of this process (Linux: /proc/self/limits),
 * or undefined where it cannot be read. Every connection costs one.
 */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((row) => row.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    if (soft === undefined || soft === 'unlimited') return undefined;
    const value = Number(soft);
    return Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Connections a node can take without running out of files: the limit less room for the rest. */
export function defaultMaxConnections(): number {
  const limit = openFileLimit();
  if (limit === undefined) return 10_000;
  return Math.max(64, limit - Math.max(100, Math.ceil(limit * 0.02)));
}
