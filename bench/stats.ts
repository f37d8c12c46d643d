/** Percentile of an unsorted sample (nearest rank); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function summarize(values: readonly number[]): { p50: number; p99: number; max: number; count: number } {
  if (values.length === 0) return { p50: Number.NaN, p99: Number.NaN, max: Number.NaN, count: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
  return { p50: at(50), p99: at(99), max: sorted[sorted.length - 1]!, count: sorted.length };
}

/** Keeps at most `capacity` samples, uniformly (reservoir sampling), so memory stays bounded. */
export class Reservoir {
  readonly values: number[] = [];
  #seen = 0;
  constructor(readonly capacity = 200_000) {}

  add(value: number): void {
    this.#seen += 1;
    if (this.values.length < this.capacity) {
      this.values.push(value);
      return;
    }
    const slot = Math.floor(Math.random() * this.#seen);
    if (slot < this.capacity) this.values[slot] = value;
  }
}

export function formatNumber(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return '–';
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(digits);
}

export interface Row {
  figure: string;
  ours: string;
  /** The figure of the server compared against (named in `figure` or `against`). */
  baseline?: string;
  ratio?: string;
  target?: string;
  verdict?: 'pass' | 'FAIL' | '';
}

/** A plain text table: a header line, a rule, then one line per row. */
export function grid(headers: readonly string[], cells: readonly (readonly string[])[]): string {
  const widths = headers.map((header, index) => Math.max(header.length, ...cells.map((line) => (line[index] ?? '').length)));
  const line = (values: readonly string[]) => values.map((value, index) => value.padEnd(widths[index]!)).join('  ').trimEnd();
  return [line(headers), line(widths.map((width) => '-'.repeat(width))), ...cells.map(line)].join('\n');
}

export function table(rows: readonly Row[], against = 'against'): string {
  const headers = ['figure', 'llm-chat', against, 'ratio', 'target', ''];
  return grid(headers, rows.map((row) => [row.figure, row.ours, row.baseline ?? '', row.ratio ?? '', row.target ?? '', row.verdict ?? '']));
}

/** Counts where every round must hold: the worst round's (fewest completed, most expected). */
const WORST_OF: Record<string, 'min' | 'max'> = { completed: 'min', sessions: 'min', expected: 'max', failed: 'max' };

/**
 * One run's figures from several runs of the same peer: each figure's median
 * (nearest rank, the lower middle of an even count), but a count that every
 * round must meet is the worst round's, so a failure in any round shows.
 */
export function medianFigures(runs: readonly Record<string, number>[]): Record<string, number> {
  if (runs.length === 1) return runs[0]!;
  const merged: Record<string, number> = {};
  for (const key of Object.keys(runs[0] ?? {})) {
    const values = runs.map((run) => run[key]!);
    const worst = WORST_OF[key];
    merged[key] = worst === 'min' ? Math.min(...values) : worst === 'max' ? Math.max(...values) : percentile(values, 50);
  }
  return merged;
}
